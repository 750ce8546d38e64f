"""Decode steps of several cases timed in one process, interleaved step by step.

    OMP_NUM_THREADS=1 python benchmarks/interleaved_decode.py --batch 1 --rounds 1200

Cases, each on its own copy of the default model sharing the weights (the bench's
`clone_sharing_weights`): `unsteered`, `unsteered#2` (the A/A twin), `general` (patch() with
the all-layer ablation, decode steps forced onto the general path `_dense_linear`, i.e. the
realisation before the decode lanes) and `lanes` (the same plan as shipped). Every round runs
one decode step of each case, in a rotating order, timed with the thread's CPU clock; ratios
are medians of per-round ratios to `unsteered` (docs/benchmarks.md, Ablation). Finer than the
bench's 128-round groups for effects of 1-2 %; numbers from one machine, ratios only.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import DynamicCache

import steerfast
from steerfast.bench.inputs import prompt_ids
from steerfast.bench.runner import get_model
from steerfast.bench.variants import PlanCache, clone_sharing_weights
from steerfast.runtime import steered

CASES = ("unsteered", "unsteered#2", "general", "lanes")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=600)
    ap.add_argument("--sites", default="all-ablate", help="a bench site config (steerfast/bench/plans.py)")
    ap.add_argument("--reset", type=int, default=48, help="re-prefill a case's cache after this many steps")
    args = ap.parse_args()

    torch.set_num_threads(1)
    base = get_model("default")
    plans = PlanCache(base)
    models = {}
    for case in CASES:
        clone = clone_sharing_weights(base)
        if case in ("general", "lanes"):
            steerfast.patch(clone, plans.plan(args.sites))
        models[case] = clone

    lanes = steered._decode_linear
    general = steered._dense_linear  # what the forward reached before the lanes
    prompt = prompt_ids(base, args.batch, 16, seed=2)
    state: dict = {}

    def reset(case):
        cache = DynamicCache(config=base.config)
        out = models[case](input_ids=prompt, past_key_values=cache, use_cache=True, logits_to_keep=1)
        state[case] = [cache, out.logits[:, -1:].argmax(-1), 0]

    def step(case):
        if state[case][2] >= args.reset:
            reset(case)
        cache, nxt, n = state[case]
        steered._decode_linear = general if case == "general" else lanes
        out = models[case](input_ids=nxt, past_key_values=cache, use_cache=True)
        state[case][1:] = [out.logits[:, -1:].argmax(-1), n + 1]

    times = {c: [] for c in CASES}
    try:
        with torch.inference_mode():
            for case in CASES:
                reset(case)
                for _ in range(5):
                    step(case)
            for r in range(args.rounds):
                order = CASES[r % len(CASES) :] + CASES[: r % len(CASES)]
                for case in order:
                    t0 = time.thread_time()
                    step(case)
                    times[case].append(time.thread_time() - t0)
    finally:
        steered._decode_linear = lanes
    ref = times["unsteered"]
    print(f"batch {args.batch}, {args.rounds} rounds, sites {args.sites}")
    print(f"unsteered median {statistics.median(ref) * 1e3:.2f} ms/step")
    for case in CASES[1:]:
        ratios = [a / b for a, b in zip(times[case], ref) if b > 0]
        q1, _, q3 = statistics.quantiles(ratios, n=4)
        print(f"{case:12s} ratio {statistics.median(ratios):.4f}  (p25 {q1:.4f}, p75 {q3:.4f})")


if __name__ == "__main__":
    main()
