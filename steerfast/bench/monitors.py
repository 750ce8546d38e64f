"""Monitor cost in decode: unsteered vs 1 monitor vs 8 monitors, side by side in one process.

    OMP_NUM_THREADS=1 python -m steerfast.bench.monitors --rounds 600 [--device cuda --dtype bfloat16]

Cases, each on its own copy of the default model sharing the weights: `unsteered`,
`unsteered#2` (the A/A twin: the noise floor), `1 monitor` (a MonitorReader with one monitor,
layer 17), `8 monitors` (eight monitors at eight layers: eight read points, the worst case),
`steered` (patch() with the shipped sentiment CAA plan) and `steered + 8 monitors`. Every round
runs one decode step of each case (its own KV cache, re-prefilled every --reset steps) in a
rotating order; per-step times are the thread's CPU clock on CPU and the wall clock around a
synchronised step on CUDA; ratios are medians of per-round ratios (docs/benchmarks.md, Monitors).
"""

from __future__ import annotations

import argparse
import statistics

import torch

import steerfast
from steerfast.bench.decode_loop import GreedySteps, decode_rounds, ratio_line
from steerfast.bench.inputs import prompt_ids
from steerfast.bench.variants import clone_sharing_weights
from steerfast.monitor import Monitor, shipped_monitor
from steerfast.runtime.monitors import MonitorReader

CASES = ("unsteered", "unsteered#2", "1 monitor", "8 monitors", "steered", "steered + 8 monitors")
BASELINE = {"unsteered#2": "unsteered", "1 monitor": "unsteered", "8 monitors": "unsteered",
            "steered": "unsteered", "steered + 8 monitors": "steered"}  # fmt: skip


def eight_monitors(model) -> list[Monitor]:
    n, d = model.config.num_hidden_layers, model.config.hidden_size
    g = torch.Generator().manual_seed(0)
    layers = [round(i * (n - 1) / 7) for i in range(8)]
    return [Monitor(layer, torch.randn(d, generator=g), f"m{k}") for k, layer in enumerate(layers)]


def build(base, device) -> dict:
    from steerfast.tune.shipped import shipped_plan

    models, readers = {}, {}
    for case in CASES:
        clone = clone_sharing_weights(base)
        if case.startswith("steered"):
            steerfast.patch(clone, shipped_plan("caa").with_strength(2.0))
        if case == "1 monitor":
            readers[case] = MonitorReader(clone, [shipped_monitor("sentiment")])
        elif case.endswith("8 monitors"):
            readers[case] = MonitorReader(clone, eight_monitors(base))
        models[case] = clone
    return models, readers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=600)
    ap.add_argument("--reset", type=int, default=48, help="re-prefill a case's cache after this many steps")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args()

    from steerfast.models import load

    cuda = args.device.startswith("cuda")
    if not cuda:
        torch.set_num_threads(1)
    base, _ = load(dtype=getattr(torch, args.dtype))
    base.to(args.device)
    models, readers = build(base, args.device)
    prompt = prompt_ids(base, args.batch, 16, seed=2).to(args.device)
    with torch.inference_mode():
        steps = {
            case: GreedySteps(
                models[case], prompt, args.reset, on_reset=getattr(readers.get(case), "clear", None)
            )
            for case in CASES
        }
        times = decode_rounds(steps, args.rounds, cuda=cuda)
    for case in CASES:
        if case in readers:  # the readings were taken: one per decode step since the last reset
            assert readers[case].n_steps >= 1
    dev = torch.cuda.get_device_name() if cuda else "cpu (1 thread)"
    print(f"{dev}, {args.dtype}, batch {args.batch}, {args.rounds} rounds")
    print(f"unsteered median {statistics.median(times['unsteered']) * 1e3:.3f} ms/step")
    for case, ref in BASELINE.items():
        print(ratio_line(case, ref, times))


if __name__ == "__main__":
    main()
