"""`steerfast serve`: the OpenAI-compatible server on the embedded default model."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import threading
import time

KEY_ENV, ADMIN_ENV = "STEERFAST_API_KEY", "STEERFAST_ADMIN_KEY"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "serve",
        help="OpenAI-compatible server with per-request steering (continuous batching)",
        description="OpenAI-compatible server with per-request steering (docs/serving.md).",
    )
    p.add_argument(
        "--model", default="smollm2-135m-instruct", help="model name or path (steerfast.models.load)"
    )
    p.add_argument(
        "--served-model-name",
        action="append",
        default=[],
        metavar="NAME",
        help="another name a request's 'model' may give (repeatable); other names get 404 model_not_found",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind; on loopback the Host header is checked"
    )
    p.add_argument("--port", type=int, default=8000, help="port to bind")
    p.add_argument(
        "--slots",
        type=int,
        default=8,
        help="bank slots: resident plans and distinct configurations in flight",
    )
    p.add_argument(
        "--plan",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="load a plan (.safetensors) at start; repeatable (not written to --plan-dir)",
    )
    p.add_argument(
        "--monitor",
        action="append",
        default=[],
        metavar="PATH",
        help="load the monitors of a monitor or plan file (or a shipped monitor's name, e.g. sentiment); "
        "repeatable; monitors carried by --plan files are loaded too (docs/monitors.md)",
    )
    p.add_argument("--max-prompt-tokens", type=int, default=1024, help="longest prompt, in tokens")
    p.add_argument("--max-tokens", type=int, default=256, help="largest max_tokens a request may ask")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")

    _device_args(p.add_argument_group("device and caching"))
    _security_args(p.add_argument_group("security and limits"))
    store = p.add_argument_group("plans that survive restarts")
    store.add_argument(
        "--plan-dir",
        default=None,
        metavar="DIR",
        help="keep uploaded plans as files in DIR (atomic writes) and load them at start",
    )
    _engine_and_log_args(p.add_argument_group("logs and shutdown"))
    _vllm_args(p.add_argument_group("engine (docs/vllm.md)"))
    p.set_defaults(func=run)
    return p


def _vllm_args(g) -> None:
    g.add_argument(
        "--engine",
        choices=("transformers", "vllm"),
        default="transformers",
        help="transformers' continuous batching (default, no vLLM needed) or vLLM with the steerfast plugin",
    )
    g.add_argument("--vllm-max-num-seqs", type=int, default=32, help="vLLM: most requests in one batch")
    g.add_argument(
        "--vllm-sites",
        default="plans",
        help="vLLM: sites hooked at start: 'plans' (those of --plan / --plan-dir files) or 'all'",
    )
    g.add_argument("--vllm-eager", action="store_true", help="vLLM: eager mode (no compile; faster start)")
    g.add_argument(
        "--vllm-kv-cache-gib",
        type=float,
        default=1.0,
        help="vLLM: KV cache size (on CPU vLLM otherwise claims 92%% of the machine's memory)",
    )


def _device_args(dev) -> None:
    dev.add_argument("--device", default="cpu", help="where the model runs: cpu, cuda or cuda:N")
    dev.add_argument(
        "--dtype",
        default="float32",
        help="model weights and activations: float32, bfloat16 or float16 (bf16, fp16, fp32); "
        "steering tables stay float32",
    )
    dev.add_argument(
        "--no-prefix-cache",
        action="store_true",
        help="no KV prefix sharing (on by default, only between requests with the same steering)",
    )


def _security_args(sec) -> None:
    sec.add_argument(
        "--api-key",
        default=os.environ.get(KEY_ENV),
        help=f"every endpoint but /health needs 'Authorization: Bearer KEY' (default: ${KEY_ENV}; "
        "prefer the variable, a flag shows in ps)",
    )
    sec.add_argument(
        "--admin-key",
        default=os.environ.get(ADMIN_ENV),
        help=f"plan upload / delete need this key (default: ${ADMIN_ENV})",
    )
    sec.add_argument(
        "--allow-plan-uploads",
        action="store_true",
        help="with no --admin-key: let every (API-key) caller upload and delete plans; "
        "without either, plan management is off",
    )
    sec.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another Host name accepted on a loopback bind (DNS-rebinding check); repeatable",
    )
    sec.add_argument("--max-upload-bytes", type=int, default=64 << 20, help="largest plan upload (413 above)")
    sec.add_argument(
        "--max-body-bytes", type=int, default=1 << 20, help="largest JSON request body (413 above)"
    )
    sec.add_argument(
        "--max-prompt-chars",
        type=int,
        default=32768,
        help="longest prompt / sum of message contents in characters, checked before tokenising (400)",
    )
    sec.add_argument(
        "--max-steering-entries", type=int, default=8, help="most steering entries in one request (400)"
    )
    sec.add_argument(
        "--max-queued",
        type=int,
        default=256,
        help="most generation requests in flight, running or waiting (429 + Retry-After above)",
    )
    sec.add_argument(
        "--max-plan-table-bytes",
        type=int,
        default=256 << 20,
        help="bank table memory one plan may need (its sites x entries x --slots, fp32; 422 above)",
    )


def _engine_and_log_args(obs) -> None:
    obs.add_argument(
        "--log-level", default="info", choices=LOG_LEVELS, help="uvicorn's and steerfast's log level"
    )
    obs.add_argument(
        "--no-access-log", action="store_true", help="no per-request line on the steerfast.access logger"
    )
    obs.add_argument(
        "--log-prompts", action="store_true", help="put each request's prompt in its access-log line"
    )
    obs.add_argument(
        "--kv-tokens",
        type=int,
        default=16384,
        help="paged KV cache size in tokens (one request's prompt + max_tokens must fit: else 400)",
    )
    obs.add_argument(
        "--max-batch-tokens",
        type=int,
        default=1024,
        help="most tokens one engine step computes (prefill chunks)",
    )
    obs.add_argument(
        "--step-timeout-s",
        type=float,
        default=120.0,
        help="a request that makes no progress (no token of its own, no engine step) for this long "
        "fails (500) instead of waiting forever",
    )
    obs.add_argument(
        "--drain-s",
        type=float,
        default=30.0,
        help="on SIGTERM/SIGINT: refuse new generations (503), let running ones finish this long, "
        "then cancel the rest and exit",
    )


def ops_config(args):
    from ..serve.ops import OpsConfig
    from ..serve.security import SecurityConfig

    security = SecurityConfig(
        api_key=args.api_key or None,
        admin_key=args.admin_key or None,
        allow_plan_uploads=args.allow_plan_uploads,
        bind_host=args.host,
        bind_port=args.port,
        allowed_hosts=tuple(args.allowed_host),
        max_upload_bytes=args.max_upload_bytes,
        max_body_bytes=args.max_body_bytes,
        max_prompt_chars=args.max_prompt_chars,
        max_steering_entries=args.max_steering_entries,
        max_queued=args.max_queued,
    )
    return OpsConfig(
        security=security,
        plan_dir=args.plan_dir,
        max_plan_table_bytes=args.max_plan_table_bytes,
        log_prompts=args.log_prompts,
    )


def _logging(args) -> None:
    level = "DEBUG" if args.log_level == "trace" else args.log_level.upper()
    from ..serve.log_safe import SafeFormatter

    handler = logging.StreamHandler()  # every record one line, whatever a request put in it
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("steerfast")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    if args.no_access_log:
        logging.getLogger("steerfast.access").disabled = True


def run(args) -> int:
    if args.engine == "vllm":
        from .serve_vllm import run_vllm

        return run_vllm(args)
    import torch
    import uvicorn

    from ..models import load
    from ..serve.app import create_app
    from ..serve.device import parse_device, parse_dtype
    from ..serve.engine import Engine
    from ..serve.http_protocol import json_400_protocol
    from ..serve.plans_api import add_checked, check_name, load_plan_file

    if args.threads:
        torch.set_num_threads(args.threads)
    _logging(args)
    ops = ops_config(args)
    ops.security.check()
    device, dtype = parse_device(args.device), parse_dtype(args.dtype)
    model, tok = load(args.model, dtype=dtype)
    model.to(device)
    engine = Engine(
        model,
        tok,
        slots=args.slots,
        max_prompt_tokens=args.max_prompt_tokens,
        max_new_tokens=args.max_tokens,
        prefix_cache=not args.no_prefix_cache,
        kv_tokens=args.kv_tokens,
        max_batch_tokens=args.max_batch_tokens,
        step_timeout_s=args.step_timeout_s,
    )
    try:
        for spec in args.plan:
            name, sep, path = spec.partition("=")
            if not sep:
                raise SystemExit(f"--plan takes NAME=PATH, got {spec!r}")
            check_name(name)
            add_checked(engine, name, load_plan_file(path), ops.max_plan_table_bytes)
        _monitors(engine, args)
        app = create_app(engine, args.model, ops, served_names=tuple(args.served_model_name))
        config = uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            access_log=False,  # steerfast.access writes one line per request instead
            timeout_graceful_shutdown=5,
            http=json_400_protocol(),  # a request uvicorn cannot parse gets a JSON 400 too
        )
        server = draining_server(config, engine, app.state.ops.admission, args.drain_s)
        logging.getLogger("steerfast.serve").info(
            "serving %s on %s:%d (api key: %s, plan management: %s, plan dir: %s, restored: %s)",
            args.model,
            args.host,
            args.port,
            "on" if ops.security.api_key else "off",
            "admin key" if ops.security.admin_key else "open" if ops.security.allow_plan_uploads else "off",
            args.plan_dir or "-",
            ",".join(app.state.ops.restored) or "-",
        )
        server.run()
    finally:
        engine.close()
    return 0


def _monitors(engine, args) -> None:
    from ..serve.monitors import attach, load_monitor_files, resolve_monitor_path

    paths = [resolve_monitor_path(p) for p in args.monitor]
    paths += [spec.partition("=")[2] for spec in args.plan]
    monitors = load_monitor_files(paths)
    if monitors:
        attach(engine, monitors)


def draining_server(config, engine, admission, drain_s: float):
    """uvicorn's Server, with SIGTERM / SIGINT draining first: new generation requests get
    503 + Retry-After, the engine drains for `drain_s` (then cancels what is left), and only
    then does uvicorn stop listening. A second signal exits at once. The signal is not
    re-raised after shutdown (uvicorn's default), so the engine is closed and the exit code is 0."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        drain_started = False

        def handle_exit(self, sig, frame):
            if self.drain_started:
                self.should_exit = self.force_exit = True
                return
            self.drain_started = True
            try:  # the signal arrives on the main thread, the one running the event loop
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            threading.Thread(target=self.drain, args=(loop,), name="steerfast-drain", daemon=True).start()

        def drain(self, loop):
            log = logging.getLogger("steerfast.serve")
            log.info("signal: draining for up to %.1f s", drain_s)
            admission.draining = True
            deadline = time.monotonic() + drain_s
            engine_drain = getattr(engine, "drain", None)
            try:
                if asyncio.iscoroutinefunction(engine_drain) and loop is not None:
                    asyncio.run_coroutine_threadsafe(engine_drain(drain_s), loop).result(drain_s + 10)
                elif callable(engine_drain):
                    engine_drain(drain_s)
            except Exception:  # still stop: a failed drain must not keep the process up
                log.exception("engine drain failed")
            while admission.in_flight and time.monotonic() < deadline:
                time.sleep(0.05)
            log.info("drained (%d requests still in flight); stopping", admission.in_flight)
            self.should_exit = True

    return DrainingServer(config)
