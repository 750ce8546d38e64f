"""Fixtures that start real `steerfast serve` processes (the launcher: tests/serve_proc.py),
shared by the server tests of every folder: a folder's conftest.py imports them

    from server_fixtures import start_server, tiny_model_path  # noqa: F401

and its tests use them:

    def test_x(start_server, tiny_model_path):
        srv = start_server("--model", str(tiny_model_path), "--max-tokens", "32")
        r = srv.client().completions.create(model=srv.model, prompt="Hi", max_tokens=4)

`start_server(*flags, env=None)` returns a `serve_proc.RunningServer`; every server a module
started is stopped when the module ends, so start one per module and reuse it
(`@pytest.fixture(scope="module")` around `start_server`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from serve_proc import RunningServer, launch, tiny_model_dir


@pytest.fixture(scope="module")
def start_server(tmp_path_factory):
    """A factory of real server processes; all of them stop when the module ends."""
    started: list[RunningServer] = []

    def start(*flags: str, env: dict | None = None, timeout: float = 240) -> RunningServer:
        folder = tmp_path_factory.mktemp("server")
        srv = launch(*flags, log_path=folder / "server.log", env=env, timeout=timeout)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A tiny random-init llama + the character tokenizer (with a chat template), saved where
    `steerfast serve --model DIR` loads it: a server that starts in seconds."""
    return tiny_model_dir(tmp_path_factory.mktemp("tiny-model"))
