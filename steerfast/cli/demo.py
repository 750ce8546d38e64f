"""`steerfast demo`, the main job: steered vs unsteered completions on the default model, and decode latency."""

from __future__ import annotations

import textwrap

import torch

from .. import ops, patch
from ..data import neutral_prompts, sentiment_pairs
from ..models import load
from ..recipes import actadd, caa
from .common import add_model_arg
from .demo_latency import bank_case, report, sadi_case

ACTADD_LAYER, ACTADD_COEFF = 6, 5.0  # the settings tests/models/test_default_model.py checks with VADER
CAA_LAYER, CAA_COEFF = 10, 12.0


def _generate(model, tok, prompts, max_new_tokens, min_new_tokens=0):
    enc = tok(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            min_new_tokens=min_new_tokens,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
        )
    return tok.batch_decode(out[:, enc.input_ids.shape[1] :], skip_special_tokens=True)


def _steered(model, plan, fn):
    with patch(model, plan):
        return fn()


def run_demo(
    model_name: str = "smollm2-135m-instruct",
    n_prompts: int = 4,
    max_new_tokens: int = 32,
    rounds: int = 3,
    width: int = 38,
    latency_tokens: int = 8,
) -> dict:
    model, tok = load(model_name)
    tok.padding_side = "left"
    love = actadd(model, tok, "Love", "Hate", ACTADD_LAYER, coeff=ACTADD_COEFF)
    sentiment = caa(model, tok, sentiment_pairs(), CAA_LAYER, coeff=CAA_COEFF)
    plans = {
        f"ActAdd Love-Hate c=+{ACTADD_COEFF:g}": love,
        f"CAA sentiment c=+{CAA_COEFF:g}": sentiment,
        f"CAA sentiment c=-{CAA_COEFF:g}": sentiment.with_strength(-CAA_COEFF),
    }
    prompts = neutral_prompts()[:n_prompts]
    columns = {"unsteered": _generate(model, tok, prompts, max_new_tokens)}
    for name, plan in plans.items():
        columns[name] = _steered(model, plan, lambda: _generate(model, tok, prompts, max_new_tokens))

    for i, prompt in enumerate(prompts):
        print(f"\n=== {prompt!r}")
        cells = [textwrap.wrap(f"[{k}] " + v[i].replace("\n", " "), width) for k, v in columns.items()]
        for line in range(max(len(c) for c in cells)):
            print(" | ".join((c[line] if line < len(c) else "").ljust(width) for c in cells))

    # latency where the runtime matters: all-layer SADI, and 8 configurations in one batch
    sadi = sadi_case(model, tok, prompts[0], latency_tokens, rounds)
    bank = bank_case(model, tok, neutral_prompts()[:8], latency_tokens, rounds)
    print(f"\nops backend {ops.get_backend()}", end="")
    print("\n".join(report(sadi, bank, latency_tokens, rounds, 8)))
    return {"columns": columns, "times": {"sadi": sadi["times"], "bank": bank["times"]}}


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="steered vs unsteered completions and decode latency")
    add_model_arg(p)
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the latency lines")
    p.set_defaults(func=run)


def run(args) -> int:
    run_demo(args.model, args.prompts, args.tokens, args.rounds)
    return 0
