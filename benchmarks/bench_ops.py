"""Microbenchmark of the fused steering ops against the eager torch sequence they replace.

    pytest benchmarks/bench_ops.py --benchmark-group-by=param:shape   # pytest-benchmark tables
    python benchmarks/bench_ops.py [--rounds 15] [--threads 2]          # ratios, side by side

The CLI interleaves the implementations round by round in one process and reports medians,
as ratios (fused / reference, and for the linear steered / plain F.linear), not absolute times.
Shapes: decode-like N = 1, 8 and prefill-like N = 512 rows, hidden D = 576, 1536, 2048; the
linear is square (D -> D, like o_proj). Half the rows carry a slot, the rest -1.
"""

from __future__ import annotations

import argparse

import torch

from steerfast.ops import library, reference
from steerfast.timing import per_call

ROWS = (1, 8, 512)
HIDDEN = (576, 1536, 2048)
E = 4


def make_inputs(n: int, d: int, dtype=torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, d, generator=g).to(dtype)
    slots = torch.randint(-1, E, (n,), generator=g)
    slots[0] = 0  # decode N=1 is a steered row
    mask = (torch.rand(E, d, generator=g) > 0.5).float()
    delta = torch.full((E,), 1e-6)  # factors ~1: repeated in-place calls neither blow up nor
    bias = torch.randn(E, d, generator=g) * 1e-6  # drift into denormals
    coef = torch.ones(E)
    w = (torch.randn(d, d, generator=g) / d**0.5).to(dtype)
    return dict(y=y, slots=slots, mask=mask, delta=delta, bias=bias, coef=coef, w=w)


def rows_fns(a):
    y, s, m, dl, b, c = a["y"], a["slots"], a["mask"], a["delta"], a["bias"], a["coef"]
    op = torch.ops.steerfast.steer_rows_.default
    return {
        "fused": lambda: op(y, s, m, dl, b, c),
        "reference": lambda: reference.steer_rows_ref_(y, s, m, dl, b, c),
    }


def linear_fns(a):
    x, w, s, m, dl, b, c = a["y"], a["w"], a["slots"], a["mask"], a["delta"], a["bias"], a["coef"]
    op = torch.ops.steerfast.steer_linear.default
    return {
        "fused": lambda: op(x, w, None, s, m, dl, m, dl, b, c),
        "reference": lambda: reference.steer_linear_ref(x, w, None, s, m, dl, m, dl, b, c),
        "plain": lambda: torch.nn.functional.linear(x, w),
    }


# ---- pytest-benchmark -------------------------------------------------------------------


def _shape_params():
    return [(n, d) for n in ROWS for d in HIDDEN]


try:
    import pytest

    @pytest.mark.parametrize("impl", ["fused", "reference"])
    @pytest.mark.parametrize("shape", _shape_params(), ids=lambda s: f"N{s[0]}-D{s[1]}")
    def test_bench_steer_rows(benchmark, shape, impl):
        benchmark.group = f"steer_rows N={shape[0]} D={shape[1]}"
        benchmark(rows_fns(make_inputs(*shape))[impl])

    @pytest.mark.parametrize("impl", ["fused", "reference", "plain"])
    @pytest.mark.parametrize("shape", _shape_params(), ids=lambda s: f"N{s[0]}-D{s[1]}")
    def test_bench_steer_linear(benchmark, shape, impl):
        benchmark.group = f"steer_linear N={shape[0]} D={shape[1]}"
        benchmark(linear_fns(make_inputs(*shape))[impl])
except ImportError:  # the CLI does not need pytest
    pass


# ---- side-by-side CLI --------------------------------------------------------------------


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    if not library.fused_available():
        print(
            f"fused CPU kernels unavailable ({library.fallback_reason()}): the 'fused' column "
            f"is the reference registered as the op"
        )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.dtype}, "
        f"{args.rounds} interleaved rounds, medians\n"
    )
    print(f"{'op':<13}{'N':>5}{'D':>6}  {'fused/ref':>9}  {'fused/plain':>11}  {'ref/plain':>9}")
    for n in ROWS:
        for d in HIDDEN:
            a = make_inputs(n, d, dtype)
            t = per_call(rows_fns(a), args.rounds)
            print(f"{'steer_rows_':<13}{n:>5}{d:>6}  {t['fused'] / t['reference']:>9.3f}")
    for n in ROWS:
        for d in HIDDEN:
            a = make_inputs(n, d, dtype)
            t = per_call(linear_fns(a), args.rounds, budget_s=0.02)
            print(
                f"{'steer_linear':<13}{n:>5}{d:>6}  {t['fused'] / t['reference']:>9.3f}  "
                f"{t['fused'] / t['plain']:>11.3f}  {t['reference'] / t['plain']:>9.3f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
