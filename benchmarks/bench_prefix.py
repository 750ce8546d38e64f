"""Prefix caching under steering: 32 requests sharing a 512-token system prompt, K in {1, 8}
steering configurations, with prefix sharing (steerfast.serve.prefix) vs without, side by side.

python benchmarks/bench_prefix.py [--rounds 1] [--new 4] [--threads 1] [--out benchmarks/results/prefix.json]
pytest benchmarks/bench_prefix.py --benchmark-only

Two engines on two copies of the default model (SmolLM2-135M, fp32, CPU), one with the
steering-keyed prefix cache and one without, fed the same bursts: all 32 requests submitted at
once, streaming, request i steered by configuration i mod K (CAA / ActAdd / SADI / LAAI
shapes, steerfast.bench.plans.mixed_plans). Every burst starts cold (the cache's reusable
blocks are evicted first), so what is shared is shared within the burst: with K
configurations, the first requests of each configuration compute the system prompt and the
rest reuse its blocks. Cells are interleaved (rotating order per round). Throughput is
generated tokens per wall-second of the burst and per CPU-second of the process; TTFT is wall
time from submission to a request's first token. Both engines must produce the same greedy
tokens for every request (checked), so the ratio compares equal work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from inspect import signature
from pathlib import Path

import pytest
import torch

REQUESTS = 32
SYSTEM_TOKENS = 512
KS = (1, 8)
MODES = ("shared", "unshared")

SYSTEM_TEXT = (
    "You are a careful assistant for a city library. Answer questions about opening hours, "
    "memberships, borrowing rules, events for children and adults, the reading rooms, the "
    "archive of old newspapers, printing and scanning, accessibility, lost items, and the "
    "cafe on the ground floor. Be brief, polite and precise; when you do not know, say so and "
    "point to the front desk. Never invent dates or prices. "
)
QUESTIONS = [
    "When does the library open on Sunday?",
    "How many books can I borrow at once?",
    "Is there a story hour for toddlers?",
    "Can I print in colour?",
    "Where are the old newspapers kept?",
    "Do I need a card to use the reading room?",
    "Is the building wheelchair accessible?",
    "I lost my umbrella yesterday, what now?",
]


def _tokens(out) -> list[int]:
    ids = getattr(out, "token_ids", None)
    return list(ids if ids is not None else out.generated_tokens)


class PrefixBench:
    def __init__(self, new: int = 4, requests: int = REQUESTS, ks=KS):
        from steerfast.bench.plans import mixed_plans
        from steerfast.models import load
        from steerfast.serve.engine import Engine, SteerEntry

        self.new, self.entry, self.requests, self.ks = new, SteerEntry, requests, tuple(ks)
        self.engines = {}
        # an unshared burst queues requests for minutes on a slow CPU: no per-request timeout
        patience = {"step_timeout_s": 3600.0} if "step_timeout_s" in signature(Engine).parameters else {}
        for mode in MODES:
            model, tok = load()
            kv = requests * (SYSTEM_TOKENS + 64 + new) + 4096
            self.engines[mode] = Engine(
                model,
                tok,
                slots=max(self.ks),
                max_prompt_tokens=SYSTEM_TOKENS + 64,
                max_new_tokens=max(new, 16),
                kv_tokens=kv,
                prefix_cache=mode == "shared",
                **patience,
            )
            for i, plan in enumerate(mixed_plans(model, max(self.ks))):
                self.engines[mode].add_plan(f"cfg{i}", plan)
        self.tok = tok
        system = (tok(SYSTEM_TEXT * 8)["input_ids"])[:SYSTEM_TOKENS]
        assert len(system) == SYSTEM_TOKENS
        self.ids = [
            system + tok(f"\nQuestion {i}: {QUESTIONS[i % len(QUESTIONS)]}\nAnswer:")["input_ids"]
            for i in range(requests)
        ]
        self.outputs: dict[tuple[str, int], list[list[int]]] = {}

    def burst(self, mode: str, k: int) -> dict:
        engine = self.engines[mode]
        cache = engine.manager.batch_processor.cache
        cache.evict_cached_blocks()  # cold: nothing reusable from an earlier burst
        reused0 = engine.prefix_keys.stats.matched_tokens if engine.prefix_keys else 0

        async def one(i):
            t0 = time.perf_counter()
            first, toks = None, []
            async for out in engine.generate(self.ids[i], [self.entry(f"cfg{i % k}")], self.new, stream=True):
                toks = _tokens(out)
                if first is None and toks:
                    first = time.perf_counter() - t0
            return first, toks

        async def all_():
            return await asyncio.gather(*(one(i) for i in range(self.requests)))

        t0, c0 = time.perf_counter(), time.process_time()
        res = asyncio.run(all_())
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        outs = [t for _, t in res]
        self.outputs.setdefault((mode, k), outs)
        tokens = sum(len(t) for t in outs)
        reused = (engine.prefix_keys.stats.matched_tokens - reused0) if engine.prefix_keys else 0
        ttft = [f for f, _ in res]
        return {
            "wall_s": wall,
            "cpu_s": cpu,
            "tokens": tokens,
            "tok_s_wall": tokens / wall,
            "tok_s_cpu": tokens / cpu,
            "ttft_p50_s": statistics.median(ttft),
            "ttft_mean_s": statistics.fmean(ttft),
            "ttft_max_s": max(ttft),
            "prompt_tokens": sum(len(x) for x in self.ids),
            "reused_prompt_tokens": reused,
        }

    def same_tokens(self) -> bool:
        return all(
            self.outputs[("shared", k)] == self.outputs[("unshared", k)]
            for k in self.ks
            if ("shared", k) in self.outputs and ("unshared", k) in self.outputs
        )

    def close(self):
        for e in self.engines.values():
            e.close()


def run(rounds: int = 1, new: int = 4, requests: int = REQUESTS, ks=KS) -> dict:
    b = PrefixBench(new, requests, ks)
    per_round = []
    try:
        cells = [(k, m) for k in ks for m in MODES]
        for r in range(rounds):
            order = cells[r % len(cells) :] + cells[: r % len(cells)]
            cells_r = {}
            for k, m in order:
                cells_r[(k, m)] = b.burst(m, k)
                print(f"round {r} K={k} {m}: {json.dumps(cells_r[(k, m)])}", flush=True)
            per_round.append(cells_r)
        same = b.same_tokens()
    finally:
        b.close()
    out = {
        "requests": requests,
        "system_tokens": SYSTEM_TOKENS,
        "new_tokens": new,
        "rounds": rounds,
        "torch_threads": torch.get_num_threads(),
        "same_greedy_tokens_shared_vs_unshared": same,
        "cells": {},
    }
    for k in ks:
        for m in MODES:
            vals = [rd[(k, m)] for rd in per_round]
            out["cells"][f"K={k} {m}"] = {key: statistics.median(v[key] for v in vals) for key in vals[0]}
        s, u = (out["cells"][f"K={k} {m}"] for m in MODES)
        out["cells"][f"K={k} ratio"] = {
            "throughput_wall": statistics.median(
                rd[(k, "shared")]["tok_s_wall"] / rd[(k, "unshared")]["tok_s_wall"] for rd in per_round
            ),
            "throughput_cpu": statistics.median(
                rd[(k, "shared")]["tok_s_cpu"] / rd[(k, "unshared")]["tok_s_cpu"] for rd in per_round
            ),
            "ttft_p50_unshared_over_shared": u["ttft_p50_s"] / s["ttft_p50_s"],
            "ttft_mean_unshared_over_shared": u["ttft_mean_s"] / s["ttft_mean_s"],
        }
    return out


def markdown(res: dict) -> str:
    rows = [
        "| K | prefix cache | prompt tokens reused | tokens / wall-s | tokens / CPU-s | TTFT p50 (s) "
        "| TTFT mean (s) | TTFT max (s) | burst wall (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    ks = sorted({int(name.split()[0][2:]) for name in res["cells"]})
    for k in ks:
        for m in MODES:
            c = res["cells"][f"K={k} {m}"]
            rows.append(
                f"| {k} | {'on' if m == 'shared' else 'off'} | {c['reused_prompt_tokens']:.0f} / "
                f"{c['prompt_tokens']:.0f} | {c['tok_s_wall']:.2f} | {c['tok_s_cpu']:.2f} | "
                f"{c['ttft_p50_s']:.2f} | {c['ttft_mean_s']:.2f} | {c['ttft_max_s']:.2f} | {c['wall_s']:.1f} |"
            )
    rows += ["", "| K | throughput on ÷ off (wall) | (CPU) | TTFT p50 off ÷ on | TTFT mean off ÷ on |"]
    rows.append("| --- | --- | --- | --- | --- |")
    for k in ks:
        r = res["cells"][f"K={k} ratio"]
        rows.append(
            f"| {k} | {r['throughput_wall']:.2f} | {r['throughput_cpu']:.2f} | "
            f"{r['ttft_p50_unshared_over_shared']:.2f} | {r['ttft_mean_unshared_over_shared']:.2f} |"
        )
    rows.append("")
    rows.append(
        f"same greedy tokens with and without sharing: {res['same_greedy_tokens_shared_vs_unshared']}"
    )
    return "\n".join(rows)


@pytest.fixture(scope="module")
def bench():
    b = PrefixBench(new=4)
    yield b
    b.close()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", KS)
def test_prefix_32_shared_system_prompt(benchmark, bench, k, mode):
    res = benchmark.pedantic(bench.burst, args=(mode, k), rounds=1, iterations=1)
    assert res["tokens"] == bench.requests * bench.new
    assert (res["reused_prompt_tokens"] > 0) == (mode == "shared")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--new", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--requests", type=int, default=REQUESTS, help="requests per burst (the issue's: 32)")
    ap.add_argument("--k", type=int, action="append", help="configurations K (repeatable; default 1 and 8)")
    ap.add_argument("--out", default="benchmarks/results/prefix.json")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    t0 = time.time()
    res = run(a.rounds, a.new, a.requests, tuple(a.k or KS))
    res["elapsed_s"] = time.time() - t0
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
