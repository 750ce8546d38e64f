"""`steerfast demo`: registers steerfast/demo.py's main job."""

from __future__ import annotations

from .common import add_model_arg


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="steered vs unsteered completions and decode latency")
    add_model_arg(p)
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--rounds", type=int, default=5)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..demo import run_demo

    run_demo(args.model, args.prompts, args.tokens, args.rounds)
    return 0
