"""`steerfast demo`, the main job: steered vs unsteered completions on the default model, and decode latency."""

from __future__ import annotations

import textwrap

import torch

from .. import ops, patch
from ..data import neutral_prompts, sentiment_pairs
from ..models import DEFAULT_MODEL, load
from ..recipes import actadd, caa
from ..tune.shipped import measured_line, shipped_plan
from .common import add_model_arg
from .demo_latency import bank_case, report, sadi_case
from .demo_stop import StopRule

# untuned fallbacks for models without shipped tuned plans (steerfast/data/tuned/ holds the
# default model's, chosen by `steerfast tune`: docs/tuning.md)
ACTADD_LAYER, ACTADD_COEFF = 6, 5.0
CAA_LAYER, CAA_COEFF = 10, 4.0


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
    max_rounds: int = 8,
    width: int = 38,
    latency_tokens: int = 8,
    spread: float = 0.05,
    min_rounds: int = 4,
) -> dict:
    model, tok = load(model_name)
    columns, (love, sentiment) = demo_columns(model, tok, model_name, n_prompts, max_new_tokens)
    prompts = neutral_prompts()[:n_prompts]
    for i, prompt in enumerate(prompts):
        print(f"\n=== {prompt!r}")
        cells = [textwrap.wrap(f"[{k}] " + v[i].replace("\n", " "), width) for k, v in columns.items()]
        for line in range(max(len(c) for c in cells)):
            print(" | ".join((c[line] if line < len(c) else "").ljust(width) for c in cells))

    print(
        "\nmeasured by `steerfast tune` on its tuning prompts and neutral text (95% bootstrap intervals; docs/tuning.md):"
    )
    print(f"  ActAdd Love-Hate: {measured_line(love)}")
    print(f"  CAA sentiment:    {measured_line(sentiment)}")

    # latency where the runtime matters: all-layer SADI, and 8 configurations in one batch
    rule = dict(rel=spread, min_rounds=min_rounds, max_rounds=max_rounds)
    sadi_rule, bank_rule = StopRule("unsteered", **rule), StopRule("unsteered batch", **rule)
    sadi = sadi_case(model, tok, prompts[0], latency_tokens, sadi_rule)
    bank = bank_case(model, tok, neutral_prompts()[:8], latency_tokens, bank_rule)
    print(f"\nops backend {ops.get_backend()}", end="")
    print("\n".join(report(sadi, bank, latency_tokens, sadi_rule.describe(), 8)))
    return {
        "columns": columns,
        "times": {"sadi": sadi["times"], "bank": bank["times"]},
        "rounds": {"sadi": sadi_rule.rounds, "bank": bank_rule.rounds},
    }


def demo_columns(model, tok, model_name: str, n_prompts: int = 4, max_new_tokens: int = 32):
    """({column: completions of the first n neutral prompts}, (ActAdd plan, CAA plan)): unsteered
    and each demo plan, greedy (tests/cli/test_demo_completions.py checks none loops)."""
    tok.padding_side = "left"
    love, sentiment = _plans(model, tok, model_name)
    c_love, c_sent = love.interventions[0].strength, sentiment.interventions[0].strength
    plans = {f"ActAdd Love-Hate c=+{c_love:g}": love, f"CAA sentiment c=+{c_sent:g}": sentiment}
    if sentiment.meta.get("tuned", {}).get("both_signs", True):  # -c only where the tune vouched for it
        plans[f"CAA sentiment c=-{c_sent:g}"] = sentiment.with_strength(-c_sent)
    prompts = neutral_prompts()[:n_prompts]
    columns = {"unsteered": _generate(model, tok, prompts, max_new_tokens)}
    for name, plan in plans.items():
        columns[name] = _steered(model, plan, lambda: _generate(model, tok, prompts, max_new_tokens))
    return columns, (love, sentiment)


def _plans(model, tok, model_name):
    """Each shipped tuned plan on the default model, else the recipe at its untuned setting."""
    tuned = model_name == DEFAULT_MODEL
    love = (shipped_plan("actadd") if tuned else None) or actadd(
        model, tok, "Love", "Hate", ACTADD_LAYER, coeff=ACTADD_COEFF
    )
    sentiment = (shipped_plan("caa") if tuned else None) or caa(
        model, tok, sentiment_pairs(), CAA_LAYER, coeff=CAA_COEFF
    )
    return love, sentiment


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="steered vs unsteered completions and decode latency")
    add_model_arg(p)
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument(
        "--max-rounds",
        type=int,
        default=8,
        help="most interleaved rounds of a group of latency lines (default 8)",
    )
    p.add_argument(
        "--spread",
        type=float,
        default=0.05,
        help="stop a group once each line's 95%% interval of its median ratio is within ±SPREAD of "
        "it (default 0.05)",
    )
    p.add_argument("--min-rounds", type=int, default=4, help="fewest rounds of a group (default 4)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import PlanError

    try:
        StopRule("x", args.spread, args.min_rounds, args.max_rounds)
    except ValueError as exc:
        raise PlanError(str(exc)) from None
    run_demo(
        args.model,
        args.prompts,
        args.tokens,
        max_rounds=args.max_rounds,
        spread=args.spread,
        min_rounds=args.min_rounds,
    )
    return 0
