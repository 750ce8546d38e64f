"""The demo's latency lines: the cases where the runtime matters, with the noise of the run.

1. all-layer SADI, batch 1: per generated token, unsteered vs hooks vs patch;
2. 8 requests with 8 different configurations (CAA, ActAdd, SADI, LAAI shapes): one batch
   through a SteeringBank vs the same 8 one by one (hooks installed per request), over the
   unsteered batch of 8. (The bank one by one, rows reassigned per request, costs what hooks one
   by one cost, 3.9x vs 4.1x in docs/tuning.md's runs: the demo no longer spends a third of its
   time showing it.)
Interleaved rounds, one torch thread, CPU time of that thread; each ratio is the median of the
per-round ratios and the noise is their spread (min-max over the rounds). A group of lines runs
until its spread is stable (demo_stop.StopRule, stated on screen), not a fixed count of rounds.
"""

from __future__ import annotations

import statistics

import torch

from .. import SteeringBank, apply_hooks, patch
from ..bench.plans import build_plan, mixed_plans
from ..timing import interleaved
from .demo_stop import StopRule, ratios


def _gen(model, tok, prompts, tokens):
    enc = tok(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        model.generate(
            **enc,
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
        )


def _ratios(times: dict, base: str) -> dict:
    """{case: (median ratio, min, max)} of per-round CPU-time ratios to `base`."""
    r = ratios({k: t["cpu"]["samples"] for k, t in times.items()}, base)
    return {k: (statistics.median(v), min(v), max(v)) for k, v in r.items()}


def _timed(cases: dict, rule: StopRule, before) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return interleaved(cases, rounds=rule.max_rounds, before=before, rotate=True, clock="cpu", stop=rule)
    finally:
        before(None)
        torch.set_num_threads(threads)


def sadi_case(model, tok, prompt: str, tokens: int, rule: StopRule) -> dict:
    plan = build_plan(model, "all-sadi")
    live: list = []

    def before(name):
        while live:
            live.pop().__exit__(None, None, None)
        if name == "hooks":
            live.append(apply_hooks(model, plan))
        elif name == "patch":
            live.append(patch(model, plan))

    gen = lambda: _gen(model, tok, [prompt], tokens)  # noqa: E731
    times = _timed({"unsteered": gen, "hooks": gen, "patch": gen}, rule, before)
    return {
        "times": times,
        "ratios": _ratios(times, "unsteered"),
        "sites": len(plan.interventions),
        "rounds": rule.outcome(),
    }


def bank_case(model, tok, prompts: list[str], tokens: int, rule: StopRule) -> dict:
    plans = mixed_plans(model, len(prompts))
    live: list = []

    def before(name):
        while live:
            live.pop().revert()
        if name == "bank, one batch":
            bank = SteeringBank(model, slots=len(plans))
            bank.load_all(dict(enumerate(plans)))
            live.append(bank)

    def one_batch():
        live[0].assign(list(range(len(prompts))))
        _gen(model, tok, prompts, tokens)

    def hooks_singles():
        for p, plan in zip(prompts, plans):
            with apply_hooks(model, plan):
                _gen(model, tok, [p], tokens)

    cases = {
        "unsteered batch": lambda: _gen(model, tok, prompts, tokens),
        "bank, one batch": one_batch,
        "hooks, one by one": hooks_singles,
    }
    times = _timed(cases, rule, before)
    return {"times": times, "ratios": _ratios(times, "unsteered batch"), "rounds": rule.outcome()}


def report(sadi: dict, bank: dict, tokens: int, rule_text: str, n: int) -> list[str]:
    def line(name, t, r, per):
        return (
            f"  {name:<18} {1000 * t['wall']['median'] / per:8.2f} ms per token wall (prefill included)   "
            f"x{r[0]:.3f} CPU (rounds: {r[1]:.3f}-{r[2]:.3f})"
        )

    out = [
        "\nlatency, 1 torch thread, CPU time of that thread, median of interleaved rounds "
        "(x = ratio to unsteered; the range is the spread over rounds: the noise of this run);",
        f"rounds: {rule_text}",
        f"all-layer SADI ({sadi['sites']} sites: 2 heads + 32 neurons scaled at the last token, "
        f"adds on attn.out and mlp.out, every layer), batch 1, {tokens} tokens, {sadi['rounds']}:",
    ]
    out += [line(k, sadi["times"][k], sadi["ratios"][k], tokens) for k in sadi["times"]]
    out.append(
        f"{n} requests with {n} different configurations (CAA, ActAdd, SADI, LAAI), {tokens} tokens each, "
        f"{bank['rounds']}:"
    )
    out += [line(k, bank["times"][k], bank["ratios"][k], tokens * n) for k in bank["times"]]
    return out


__all__ = ["sadi_case", "bank_case", "report"]
