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

import torch

import steerfast
from steerfast.bench.decode_loop import GreedySteps, decode_rounds, ratio_line
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
    general = steered._dense_linear
    prompt = prompt_ids(base, args.batch, 16, seed=2)

    def before(case):  # the general path is what the forward reached before the decode lanes
        steered._decode_linear = general if case == "general" else lanes

    try:
        with torch.inference_mode():
            steps = {case: GreedySteps(models[case], prompt, args.reset) for case in CASES}
            times = decode_rounds(steps, args.rounds, before=before)
    finally:
        steered._decode_linear = lanes
    print(f"batch {args.batch}, {args.rounds} rounds, sites {args.sites}")
    print(f"unsteered median {statistics.median(times['unsteered']) * 1e3:.2f} ms/step")
    for case in CASES[1:]:
        print(ratio_line(case, "unsteered", times))


if __name__ == "__main__":
    main()
