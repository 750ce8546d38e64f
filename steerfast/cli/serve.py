"""`steerfast serve`: the OpenAI-compatible server on the embedded default model."""

from __future__ import annotations

import argparse


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "serve", help="OpenAI-compatible server with per-request steering (continuous batching)"
    )
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
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
        help="load a plan (.safetensors) at start; repeatable",
    )
    p.add_argument("--max-prompt-tokens", type=int, default=1024)
    p.add_argument("--max-tokens", type=int, default=256, help="largest max_tokens a request may ask")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import torch
    import uvicorn

    from ..models import load
    from ..plan import SteeringPlan
    from ..serve.app import create_app
    from ..serve.engine import Engine

    if args.threads:
        torch.set_num_threads(args.threads)
    model, tok = load(args.model)
    engine = Engine(
        model, tok, slots=args.slots, max_prompt_tokens=args.max_prompt_tokens, max_new_tokens=args.max_tokens
    )
    try:
        for spec in args.plan:
            name, sep, path = spec.partition("=")
            if not sep:
                raise SystemExit(f"--plan takes NAME=PATH, got {spec!r}")
            engine.add_plan(name, SteeringPlan.load(path))
        uvicorn.run(create_app(engine, args.model), host=args.host, port=args.port, log_level="warning")
    finally:
        engine.close()
    return 0
