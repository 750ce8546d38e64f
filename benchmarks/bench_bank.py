"""Per-request steering throughput: one batch-8 forward with 8 distinct steering configs,
against 8 separate batch-1 runs (each with its own plan) and an unsteered batch of 8.

    python benchmarks/bench_bank.py [--rounds 15] [--out benchmarks/results/bank.json]
    pytest benchmarks/bench_bank.py --benchmark-only

Prefill: 8 prompts of 32 tokens. Decode: one token per row on top of a 32-token KV cache.
Ratios from interleaved rounds in one process (CPU time of the calling thread, 1 torch
thread, so other processes' load does not count).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import DynamicCache

import steerfast
from steerfast.bench.plans import mixed_plans
from steerfast.kv_cache_arg import cache_arg
from steerfast.models import load
from steerfast.timing import interleaved

BATCH, PROMPT = 8, 32


def _inputs(model):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(100, model.config.vocab_size - 1, (BATCH, PROMPT), generator=g)
    return ids, torch.ones_like(ids)


def cases(model, plans):
    ids, mask = _inputs(model)
    bank = steerfast.SteeringBank(model, slots=BATCH)
    bank.load_all(dict(enumerate(plans)))

    def fwd(i, m, cache=None, pos=None):
        return model(
            input_ids=i,
            attention_mask=m,
            **cache_arg(model, cache),
            position_ids=pos,
            use_cache=cache is not None,
        )

    def prefilled(rows):
        cache = DynamicCache()
        with torch.no_grad():
            fwd(ids[rows], mask[rows], cache)
        return cache

    # decode: one new token on top of a 32-token cache, the cache cropped back each time
    def decode_step(rows, cache):
        nxt = ids[rows, :1]
        m = torch.ones(len(rows), PROMPT + 1, dtype=mask.dtype)
        pos = torch.full((len(rows), 1), PROMPT)
        fwd(nxt, m, cache, pos)
        cache.crop(-1)

    all_rows = list(range(BATCH))
    unsteered = {"prefill": lambda: fwd(ids, mask)}
    bank.assign([-1] * BATCH)
    cache_plain = prefilled(all_rows)
    bank.assign(all_rows)
    cache_bank = prefilled(all_rows)
    single_caches = []
    for r in all_rows:
        bank.assign([r])
        single_caches.append(prefilled([r]))

    def with_slots(slots, fn):
        def run():
            bank.assign(slots)
            return fn()

        return run

    def singles(fn_of_row):
        def run():
            for r in all_rows:
                bank.assign([r])
                fn_of_row(r)

        return run

    table = {
        "prefill": {
            "unsteered batch 8": with_slots([-1] * BATCH, unsteered["prefill"]),
            "bank batch 8, 8 configs": with_slots(all_rows, lambda: fwd(ids, mask)),
            "8 x batch 1": singles(lambda r: fwd(ids[r : r + 1], mask[r : r + 1])),
        },
        "decode": {
            "unsteered batch 8": with_slots([-1] * BATCH, lambda: decode_step(all_rows, cache_plain)),
            "bank batch 8, 8 configs": with_slots(all_rows, lambda: decode_step(all_rows, cache_bank)),
            "8 x batch 1": singles(lambda r: decode_step([r], single_caches[r])),
        },
    }
    return bank, table


def run(rounds: int = 15) -> dict:
    torch.set_num_threads(1)
    model, _ = load()
    plans = mixed_plans(model, BATCH)
    bank, table = cases(model, plans)
    results = {}
    try:
        with torch.no_grad():
            for phase, phase_cases in table.items():
                t = interleaved(phase_cases, rounds=rounds, warmup=2, rotate=True, clock="cpu")
                med = {k: v["median"] for k, v in t.items()}
                base = med["bank batch 8, 8 configs"]
                results[phase] = {
                    "median_s": med,
                    "bank / unsteered": base / med["unsteered batch 8"],
                    "8 x batch 1 / bank": med["8 x batch 1"] / base,
                }
    finally:
        bank.revert()
    results["backend"] = steerfast.ops.get_backend()
    results["rounds"] = rounds
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--out", default="benchmarks/results/bank.json")
    args = p.parse_args(argv)
    res = run(args.rounds)
    print(f"ops backend: {res['backend']}, {args.rounds} interleaved rounds, CPU time, 1 thread")
    print(f"{'phase':<8} {'bank ÷ unsteered':>18} {'8×batch-1 ÷ bank':>18}")
    for phase in ("prefill", "decode"):
        r = res[phase]
        print(f"{phase:<8} {r['bank / unsteered']:>18.3f} {r['8 x batch 1 / bank']:>18.2f}")
    res.update(
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        command="python benchmarks/bench_bank.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        machine=_machine(),
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))
    return 0


def _machine() -> dict:
    """What the README's figures name with each result (scripts/readme_figures.py)."""
    import transformers

    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": 1,
        "loadavg": list(os.getloadavg()),
    }


# --- pytest-benchmark ------------------------------------------------------------------
def _bench_setup():
    torch.set_num_threads(1)
    model, _ = load()
    return cases(model, mixed_plans(model, BATCH))


@pytest.mark.parametrize("case", ["bank batch 8, 8 configs", "unsteered batch 8", "8 x batch 1"])
def test_decode_step(benchmark, case):
    bank, table = _bench_setup()
    try:
        with torch.no_grad():
            benchmark(table["decode"][case])
    finally:
        bank.revert()


if __name__ == "__main__":
    sys.exit(main())
