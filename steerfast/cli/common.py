"""Options and steps the subcommands share: the model, reading a plan, fitting it."""

from __future__ import annotations

import sys

from ..models import DEFAULT_MODEL


def add_model_arg(p) -> None:
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"model name, HF directory or .gguf file (default: the embedded {DEFAULT_MODEL})",
    )


def say(msg: str) -> None:
    """Progress notes go to stderr; stdout carries the results."""
    print(msg, file=sys.stderr, flush=True)


def load_model(name: str):
    from ..models import load

    say(f"loading model {name} ...")
    model, tok = load(name)
    tok.padding_side = "left"
    return model, tok


def read_plan(path: str, scale: float | None = None):
    from ..interop import load_plan

    return load_plan(path, scale)


def fit(plan, model, source: str) -> None:
    """PlanError naming the mismatch, before anything is patched."""
    from ..interop import check_fits

    check_fits(plan, model, source)
