"""Serving throughput benchmark (steerfast.bench.serving): pytest-benchmark cells and a CLI.

python benchmarks/bench_serve.py [--rounds 3] [--new 16] [--out benchmarks/results/serve.json]
pytest benchmarks/bench_serve.py --benchmark-only
steerfast bench --serve      (the same run from the package)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pytest
import torch

from steerfast.bench.serving import KS, REQUESTS, Bench, markdown, run


@pytest.fixture(scope="module")
def bench():
    b = Bench(new=8)
    for k in KS:
        b.concurrent(k)
    yield b
    b.close()


@pytest.mark.parametrize("k", KS)
def test_serve_32_concurrent(benchmark, bench, k):
    res = benchmark.pedantic(bench.concurrent, args=(k,), rounds=2, iterations=1)
    assert res["tokens"] == REQUESTS * bench.new


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--new", type=int, default=16)
    ap.add_argument("--sequential-rounds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (CPU time is per process)")
    ap.add_argument("--out", default="benchmarks/results/serve.json")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    t0 = time.time()
    res = run(a.rounds, a.new, a.sequential_rounds)
    res["elapsed_s"] = time.time() - t0
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
