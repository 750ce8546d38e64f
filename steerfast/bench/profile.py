"""Per-token cost breakdown of the steered decode step (torch.profiler).

For each variant (batch 1, one decode step after a DECODE_PROMPT-token prompt) the profiler
counts the ops of `steps` decode steps (every aten:: / steerfast:: event, nested ones
included) and their self CPU time. What steering adds per token: the op count difference
with the unsteered model, and the time of those added ops (for each op kind whose count
grows: added calls x that kind's mean self time per call); per site, that over the number
of steered sites (fused: includes the per-forward row-map ops, spread over the sites).
steerfast:: ops are timed on their own. The op
names whose count changes most show what each realisation adds (hooks: where/add/mul/
clamp/index on the whole activation; fused: one steerfast:: op per site plus the row maps).

Profiler times include the profiler's own per-op overhead, so they overstate small ops; the
interleaved timings are the ground truth for wall time, this is the anatomy.
"""

from __future__ import annotations

import statistics
from collections import Counter

import torch
from torch.profiler import ProfilerActivity, profile

from ..timing import interleaved
from .decode_loop import GreedySteps
from .inputs import DECODE_PROMPT, prompt_ids
from .plans import site_count
from .variants import PlanCache, build_variant, select_backend

VARIANTS = (
    "unsteered",
    "hooks[all-add]",
    "fused[all-add]",
    "hooks[all-sadi]",
    "fused[all-sadi]",
    "bank[all-sadi]",
)


def _is_op(name: str) -> bool:
    return name.startswith("aten::") or name.startswith("steerfast::")


def _profile_steps(step, steps: int) -> tuple[Counter, Counter]:
    """(op -> event count, op -> self CPU µs) over `steps` decode steps."""
    counts: Counter = Counter()
    self_us: Counter = Counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    for ev in prof.key_averages():
        if _is_op(ev.key):
            counts[ev.key] += ev.count
            self_us[ev.key] += ev.self_cpu_time_total
    return counts, self_us


def _profiled_runs(model, built: list, steps: int, rounds: int) -> dict:
    """{variant: [(op counts, op self µs) per round]}: each variant decodes `steps` tokens under
    the profiler per round, after an untimed prefill of the decode prompt, rounds interleaved."""
    from .. import ops

    prompt = prompt_ids(model, 1, DECODE_PROMPT, seed=2)
    states = {}
    with torch.no_grad():
        for v in built:
            if not v.ok:
                continue
            select_backend(v)
            states[v.name] = GreedySteps(v.model, prompt)
        per: dict = {v.name: [] for v in built if v.ok}

        def make(v):
            def run():
                per[v.name].append(_profile_steps(states[v.name], steps))

            return run

        by_name = {v.name: v for v in built}
        interleaved(
            {v.name: make(v) for v in built if v.ok},
            rounds=rounds,
            warmup=0,
            before=lambda n: select_backend(by_name[n]),
            rotate=True,
        )
    ops.set_backend("auto")
    return per


def _row(runs: list, base: list | None, steps: int, sites: int) -> dict:
    """One variant's per-token op counts and self times, and what it adds to `base` (unsteered)."""

    def med_us(name=None):
        vals = [sum(r[1].values()) if name is None else r[1].get(name, 0.0) for r in runs]
        return statistics.median(vals) / steps

    counts = runs[0][0]
    ops_tok = sum(counts.values()) / steps
    row = {"ops_per_token": ops_tok, "self_us_per_token": med_us(), "sites": sites}
    steer = [k for k in counts if k.startswith("steerfast::")]
    if steer:
        calls = sum(counts[k] for k in steer) / steps
        us = sum(med_us(k) for k in steer)
        row.update(
            {
                "steer_op_calls_per_token": calls,
                "steer_op_us_per_token": us,
                "steer_op_us_per_call": us / calls if calls else None,
            }
        )
    if base is None:
        return row
    base_counts = base[0][0]
    delta = Counter({k: (counts[k] - base_counts.get(k, 0)) / steps for k in set(counts) | set(base_counts)})
    added = [k for k, n in delta.items() if n > 0]
    # time of the ops steering adds: for each op kind whose count grows, the added calls times
    # that kind's mean self time per call in this variant (differences of totals would drown in
    # the noise of the model's own ops)
    d_us = sum(delta[k] * med_us(k) * steps / counts[k] for k in added if counts[k])
    row["added_us_by_op"] = {
        k: round(delta[k] * med_us(k) * steps / counts[k], 1)
        for k in sorted(added, key=lambda k: -delta[k])[:12]
        if counts[k]
    }
    d_ops = ops_tok - sum(base_counts.values()) / steps
    row.update(
        {
            "added_ops_per_token": d_ops,
            "added_us_per_token": d_us,
            "added_ops_per_site": d_ops / sites if sites else None,
            "added_us_per_site": d_us / sites if sites else None,
        }
    )
    row["top_added_ops"] = {k: n for k, n in delta.most_common(8) if n > 0}
    return row


def breakdown(model, steps: int = 8, rounds: int = 3, variants=VARIANTS) -> dict:
    plans = PlanCache(model)
    built = [build_variant(model, name, plans, 1) for name in variants]
    per = _profiled_runs(model, built, steps, rounds)
    out: dict = {"steps": steps, "rounds": rounds, "batch": 1, "prompt": DECODE_PROMPT, "variants": {}}
    base = per.get("unsteered") or None
    for v in built:
        row = {"status": v.status, "reason": v.reason}
        if v.ok and per.get(v.name):
            sites = site_count(plans.plan(v.sites)) if v.sites else 0
            row.update(_row(per[v.name], base if v.name != "unsteered" else None, steps, sites))
        out["variants"][v.name] = row
        v.close()
    return out


__all__ = ["breakdown", "VARIANTS"]
