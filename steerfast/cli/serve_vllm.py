"""`steerfast serve --engine vllm`: the same model, plans and requests on vLLM's OpenAI server
with the steerfast plugin (docs/vllm.md). Clients do not change: the top-level `steering`
field, the plan routes, the API and admin keys and `--plan-dir` mean what they mean on the
transformers engine. The packaged model is exported to an HF-format directory once (cached).

This process becomes vLLM's server (exec): signals, exit codes and logs are vLLM's."""

from __future__ import annotations

import importlib.util
import json
import os
import sys

ENTRY = "from vllm.entrypoints.launchers.api_server.entry import main; main()"


def vllm_command(args, model_dir: str) -> tuple[list[str], dict]:
    """(argv, environment) of the vLLM server for steerfast serve's parsed `args`."""
    plans = {}
    for item in args.plan:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"--plan wants NAME=PATH, got {item!r}")
        plans[name] = os.path.abspath(path)
    steer = {"plans": plans, "sites": args.vllm_sites}
    if args.monitor:
        from ..serve.monitors import resolve_monitor_path

        steer["monitors"] = [os.path.abspath(resolve_monitor_path(m)) for m in args.monitor]
    if args.plan_dir:
        os.makedirs(args.plan_dir, exist_ok=True)
        steer["plan_dir"] = os.path.abspath(args.plan_dir)
    names = ["steerfast", *args.served_model_name]
    argv = [
        sys.executable, "-c", ENTRY,
        "--model", model_dir,
        "--served-model-name", *names,
        "--dtype", "float32",
        "--host", args.host,
        "--port", str(args.port),
        "--max-model-len", str(args.max_prompt_tokens + args.max_tokens),
        "--max-num-seqs", str(args.vllm_max_num_seqs),
        "--kv-cache-memory-bytes", str(int(args.vllm_kv_cache_gib * (1 << 30))),
        "--additional-config", json.dumps({"steerfast": steer}),
    ]  # fmt: skip
    if args.no_prefix_cache:
        argv.append("--no-enable-prefix-caching")
    if args.vllm_eager:
        argv.append("--enforce-eager")
    keys = [
        k
        for k in (
            args.api_key or os.environ.get("STEERFAST_API_KEY"),
            args.admin_key or os.environ.get("STEERFAST_ADMIN_KEY"),
        )
        if k
    ]
    if keys:
        argv += ["--api-key", *keys]
    env = dict(os.environ)
    env.setdefault("VLLM_HOST_IP", "127.0.0.1")
    env["VLLM_PLUGINS"] = ",".join(
        sorted({*filter(None, env.get("VLLM_PLUGINS", "").split(",")), "steerfast"})
    )
    admin = args.admin_key or os.environ.get("STEERFAST_ADMIN_KEY")
    if admin:
        env["STEERFAST_ADMIN_KEY"] = admin
    elif args.allow_plan_uploads:
        env["STEERFAST_ALLOW_PLAN_UPLOADS"] = "1"
    return argv, env


def run_vllm(args) -> int:
    if importlib.util.find_spec("vllm") is None:
        raise SystemExit(
            "--engine vllm needs vLLM's CPU build in this environment: `make vllm-setup` builds "
            ".venv-vllm (then run .venv-vllm/bin/steerfast serve --engine vllm)"
        )
    from ..vllm.export import export_dir

    model_dir = str(export_dir(args.model))
    argv, env = vllm_command(args, model_dir)
    os.execvpe(argv[0], argv, env)
    return 0  # not reached
