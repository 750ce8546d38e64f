"""The Triton kernels compiled for real (not interpreted) through the registered CUDA ops,
against the fp64 oracle, fp32 / fp16 / bf16. Needs a CUDA device: `python -m
steerfast.bench.gpu` runs this file on the lent GPU machine (docs/gpu_notes.md); on a CPU-only
machine there is nothing to compile for, and the interpreted kernels are tested in
test_kern_triton.py."""

import itertools
import os

import pytest
import torch

# Why skip: compiling Triton needs a GPU; the GPU command runs this file on one (the module
# docstring), the interpreted kernels are tested on CPU in test_kern_triton.py.
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

from kern_oracle import DTYPES, assert_rows_close, check_linear, linear_case, rows_case, steer_rows64  # noqa: E402

ROW_SHAPES = [(1, 576), (5, 123), (64, 2048), (300, 4096), (8, 11008)]
ROW_CASES = list(itertools.product(ROW_SHAPES, ("mask", "bias", "both"), DTYPES, (torch.int32, torch.int64)))
LIN_SHAPES = [(1, 576, 24), (5, 123, 37), (8, 2048, 2048), (12, 40, 24), (64, 4096, 512)]
LIN_CASES = list(itertools.product(LIN_SHAPES, ("in+omask+obias", "in", "obias", "none"), DTYPES))


def _cuda(t):
    return None if t is None else t.cuda()


def test_triton_is_compiled_and_registered():
    from steerfast.ops import library

    assert os.environ.get("TRITON_INTERPRET", "0") in ("", "0")
    assert library.triton_available(), library.triton_reason()


@pytest.mark.parametrize(
    "case", ROW_CASES, ids=[f"{n}x{d}-{k}-{str(t)[6:]}-{str(s)[6:]}" for (n, d), k, t, s in ROW_CASES]
)
def test_cuda_steer_rows(case):
    (n, d), kinds, dtype, sdt = case
    y, slots, mask, delta, bias, coef = rows_case(300 + ROW_CASES.index(case), n, d, dtype, sdt, kinds)
    out = y.cuda()
    torch.ops.steerfast.steer_rows_(out, *map(_cuda, (slots, mask, delta, bias, coef)))
    expect, scale = steer_rows64(y, slots, mask, delta, bias, coef)
    assert_rows_close(out.cpu(), y, slots, expect, scale, dtype)


@pytest.mark.parametrize(
    "case", LIN_CASES, ids=[f"{n}x{k}x{o}-{kd}-{str(t)[6:]}" for (n, k, o), kd, t in LIN_CASES]
)
def test_cuda_steer_linear(case):
    (n, k, o), kinds, dtype = case
    seed = 400 + LIN_CASES.index(case)
    args = linear_case(
        seed, n, k, o, dtype, torch.int32 if seed % 2 else torch.int64, kinds, lin_bias=seed % 3 != 0
    )
    x = args[0].cuda()
    before = x.clone()
    out = torch.ops.steerfast.steer_linear(x, *map(_cuda, args[1:]))
    assert torch.equal(x, before), "x was modified"
    check_linear(out.cpu(), args)
