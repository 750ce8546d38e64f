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
import time

import torch
from transformers import DynamicCache

import steerfast
from steerfast.bench.runner import _ids
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
    prompt = _ids(base, args.batch, 16, seed=2).to(args.device)
    state: dict = {}

    def reset(case):
        if case in readers:
            readers[case].clear()
        cache = DynamicCache(config=base.config)
        out = models[case](input_ids=prompt, past_key_values=cache, use_cache=True, logits_to_keep=1)
        state[case] = [cache, out.logits[:, -1:].argmax(-1), 0]

    def step(case):
        if state[case][2] >= args.reset:
            reset(case)
        cache, nxt, n = state[case]
        out = models[case](input_ids=nxt, past_key_values=cache, use_cache=True)
        state[case][1:] = [out.logits[:, -1:].argmax(-1), n + 1]

    def timed(case) -> float:
        if cuda:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            step(case)
            torch.cuda.synchronize()
            return time.perf_counter() - t0
        t0 = time.thread_time()
        step(case)
        return time.thread_time() - t0

    times = {c: [] for c in CASES}
    with torch.inference_mode():
        for case in CASES:
            reset(case)
            for _ in range(5):
                step(case)
        for r in range(args.rounds):
            for case in CASES[r % len(CASES) :] + CASES[: r % len(CASES)]:
                times[case].append(timed(case))
    for case in CASES:
        if case in readers:  # the readings were taken: one per decode step since the last reset
            assert readers[case].n_steps >= 1
    dev = torch.cuda.get_device_name() if cuda else "cpu (1 thread)"
    print(f"{dev}, {args.dtype}, batch {args.batch}, {args.rounds} rounds")
    print(f"unsteered median {statistics.median(times['unsteered']) * 1e3:.3f} ms/step")
    for case, ref in BASELINE.items():
        ratios = [a / b for a, b in zip(times[case], times[ref]) if b > 0]
        q1, _, q3 = statistics.quantiles(ratios, n=4)
        print(f"{case:22s} / {ref:10s} {statistics.median(ratios):.4f}  (p25 {q1:.4f}, p75 {q3:.4f})")


if __name__ == "__main__":
    main()
