"""`vllm.general_plugins` entry point: runs in every vLLM process, idempotent, patches only.

Without `additional_config["steerfast"]` nothing steers (a request asking for steering is
refused). With a vLLM it was not checked against it raises, naming the version."""

from __future__ import annotations

_REGISTERED = False


def register() -> None:
    global _REGISTERED
    if _REGISTERED:
        return
    from . import frontend, serve_monitors, worker
    from .internals import check_vllm

    check_vllm()
    frontend.install()
    worker.install()
    serve_monitors.install()
    _REGISTERED = True
