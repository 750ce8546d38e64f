"""Serving throughput: 32 concurrent requests on transformers' continuous-batching engine with
K in {0, 1, 8, 32} distinct steering configurations, against unsteered continuous batching
(K = 0) and against running the same 32 requests one after another with `steerfast.generate`.

    steerfast bench --serve [--serve-rounds 3] [--serve-new 16]
    python benchmarks/bench_serve.py [--rounds 3] [--new 16] [--out benchmarks/results/serve.json]
    pytest benchmarks/bench_serve.py --benchmark-only

Engine level (steerfast.serve.Engine: slot assignment, packed row maps, the engine's own
scheduler), no HTTP. Throughput is tokens per CPU-second of this process (all its threads:
the engine computes in its own thread; 1 torch thread by default), so other processes' load
on a shared machine counts much less than in wall time; the wall-clock figure is reported
beside it, and latencies are wall clock. K values are interleaved within each round, in a
rotating order, and ratios are per-round medians. Request i uses configuration i mod K;
configurations cycle through CAA / ActAdd / SADI (heads + neurons) / LAAI (every layer)
shapes with random tensors. EOS is ignored so every request generates exactly `new` tokens.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import torch

from .plans import mixed_plans

REQUESTS = 32
KS = (0, 1, 8, 32)


def prompts(tok, n: int = REQUESTS) -> list[str]:
    topics = [
        "the sea",
        "a city at night",
        "my grandmother",
        "winter",
        "a long journey",
        "music",
        "the first day of school",
        "a storm",
        "coffee",
        "an old photograph",
        "the market",
        "trains",
    ]
    return [f"Write a few sentences about {topics[i % len(topics)]} (note {i})." for i in range(n)]


class Bench:
    def __init__(self, new: int = 16):
        from steerfast.models import load
        from steerfast.serve.engine import Engine, SteerEntry

        self.new = new
        self.model, self.tok = load()
        self.plans = mixed_plans(self.model, REQUESTS)
        self.engine = Engine(self.model, self.tok, slots=REQUESTS, max_new_tokens=max(new, 16))
        self.engine.manager.generation_config.eos_token_id = -1  # exactly `new` tokens each
        for i, p in enumerate(self.plans):
            self.engine.add_plan(f"cfg{i}", p)
        self.texts = prompts(self.tok)
        self.ids = [self.engine.encode(t) for t in self.texts]
        self.entry = SteerEntry
        self._seq_model = None

    def concurrent(self, k: int) -> dict:
        """All 32 requests at once; K configurations. Wall time, tokens, per-request latency."""

        async def one(i):
            t0 = time.perf_counter()
            entries = [] if k == 0 else [self.entry(f"cfg{i % k}")]
            n = 0
            async for out in self.engine.generate(self.ids[i], entries, self.new):
                n = len(out.generated_tokens)
            return time.perf_counter() - t0, n

        async def all_():
            return await asyncio.gather(*(one(i) for i in range(REQUESTS)))

        t0, c0 = time.perf_counter(), time.process_time()
        res = asyncio.run(all_())
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        tokens = sum(n for _, n in res)
        assert tokens == REQUESTS * self.new, tokens
        return {
            "wall_s": wall,
            "cpu_s": cpu,
            "tokens": tokens,
            "tok_s": tokens / cpu,
            "tok_s_wall": tokens / wall,
            "latencies": [t for t, _ in res],
        }

    def sequential(self, k: int = REQUESTS) -> dict:
        """The same requests one after another with steerfast.generate, on a second copy of the
        model (the serving one is in the engine's paged-attention mode)."""
        from steerfast.models import load
        from steerfast.steered_generation import Steer, generate

        if self._seq_model is None:
            self._seq_model = load()[0]
        lat = []
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(REQUESTS):
            s = time.perf_counter()
            steer = None if k == 0 else Steer(self.plans[i % k])
            generate(
                self._seq_model,
                self.tok,
                [self.texts[i]],
                steer=[steer],
                max_new_tokens=self.new,
                min_new_tokens=self.new,
                do_sample=False,
            )
            lat.append(time.perf_counter() - s)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        n = REQUESTS * self.new
        return {
            "wall_s": wall,
            "cpu_s": cpu,
            "tokens": n,
            "tok_s": n / cpu,
            "tok_s_wall": n / wall,
            "latencies": lat,
        }

    def close(self):
        self.engine.close()


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(q * (len(v) - 1))))]


def run(rounds: int = 3, new: int = 16, sequential_rounds: int = 1) -> dict:
    b = Bench(new)
    try:
        for k in KS:  # warm-up: loads the slots, first-call costs
            b.concurrent(k)
        per_round = []
        for r in range(rounds):
            order = list(KS[r % len(KS) :] + KS[: r % len(KS)])
            per_round.append({k: b.concurrent(k) for k in order})
        seq = [b.sequential(REQUESTS) for _ in range(sequential_rounds)]
    finally:
        b.close()
    out = {
        "requests": REQUESTS,
        "new_tokens": new,
        "rounds": rounds,
        "torch_threads": torch.get_num_threads(),
        "cells": {},
    }
    for k in KS:
        ratios = [rd[k]["tok_s"] / rd[0]["tok_s"] for rd in per_round]
        lats = [x for rd in per_round for x in rd[k]["latencies"]]
        out["cells"][f"K={k}"] = {
            "tok_s": statistics.median(rd[k]["tok_s"] for rd in per_round),
            "tok_s_wall": statistics.median(rd[k]["tok_s_wall"] for rd in per_round),
            "vs_unsteered_cb_wall": statistics.median(
                rd[k]["tok_s_wall"] / rd[0]["tok_s_wall"] for rd in per_round
            ),
            "vs_unsteered_cb": statistics.median(ratios),
            "vs_unsteered_cb_rounds": ratios,
            "p50_s": pct(lats, 0.5),
            "p99_s": pct(lats, 0.99),
        }
    seq_tok_s = statistics.median(s["tok_s"] for s in seq)
    seq_lat = [x for s in seq for x in s["latencies"]]
    # a request's latency when the 32 are queued one after another: its finish time
    seq_finish = [sum(s["latencies"][: i + 1]) for s in seq for i in range(REQUESTS)]
    out["sequential_generate_K32"] = {
        "tok_s": seq_tok_s,
        "tok_s_wall": statistics.median(s["tok_s_wall"] for s in seq),
        "per_request_s_p50": pct(seq_lat, 0.5),
        "p50_s": pct(seq_finish, 0.5),
        "p99_s": pct(seq_finish, 0.99),
    }
    for k in KS:
        out["cells"][f"K={k}"]["vs_sequential_generate"] = out["cells"][f"K={k}"]["tok_s"] / seq_tok_s
    return out


def markdown(res: dict) -> str:
    rows = [
        "| cell | tokens / CPU-s | ÷ unsteered CB (median; rounds) | × sequential `generate` "
        "| tokens / wall-s | ÷ unsteered (wall) | p50 latency (s) | p99 latency (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, c in res["cells"].items():
        label = "unsteered CB" if name == "K=0" else f"{name} configurations"
        rows.append(
            f"| {label} | {c['tok_s']:.1f} | {c['vs_unsteered_cb']:.3f} "
            f"({', '.join(f'{r:.3f}' for r in c['vs_unsteered_cb_rounds'])}) | "
            f"{c['vs_sequential_generate']:.2f} | {c['tok_s_wall']:.1f} | {c['vs_unsteered_cb_wall']:.3f} | "
            f"{c['p50_s']:.2f} | {c['p99_s']:.2f} |"
        )
    s = res["sequential_generate_K32"]
    rows.append(
        f"| sequential `steerfast.generate`, 32 configs | {s['tok_s']:.1f} | — | 1.00 | "
        f"{s['tok_s_wall']:.1f} | — | {s['p50_s']:.2f} | {s['p99_s']:.2f} |"
    )
    return "\n".join(rows)
