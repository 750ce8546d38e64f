"""steerfast::steer_linear on CPU against the fp64 oracle, and bit-identity with the reference."""

import itertools

import pytest
import torch
from kern_oracle import DTYPES, check_linear, linear_case

import steerfast.ops as ops
from steerfast.ops import library, reference

SHAPES = [(1, 576, 64), (5, 123, 77), (3, 896, 32), (2, 2048, 48), (1, 4096, 16), (9, 64, 40)]
KINDS = ("in", "omask", "obias", "in+omask+obias", "none")
CASES = list(itertools.product(SHAPES, KINDS, DTYPES))


def _id(case):
    (n, k, o), kinds, dtype = case
    return f"{n}x{k}x{o}-{kinds}-{str(dtype)[6:]}"


def _poison_allocator(shape, dtype):
    # Best effort on CPU: a freed NaN block of the output's size is likely to be reused by
    # the op's output allocation, so an element the op forgets to write shows up as NaN.
    junk = torch.full(shape, float("nan"), dtype=dtype)
    del junk


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_steer_linear_matches_fp64(case):
    (n, k, o), kinds, dtype = case
    seed = CASES.index(case)
    sdt = torch.int32 if seed % 2 else torch.int64
    args = linear_case(seed, n, k, o, dtype, sdt, kinds, lin_bias=seed % 3 != 0)
    x_before = args[0].clone()
    _poison_allocator((n, o), dtype)
    out = torch.ops.steerfast.steer_linear(*args)
    assert torch.equal(args[0], x_before), "x was modified"
    check_linear(out, args)


@pytest.mark.skipif(not library.fused_available(), reason="C++ kernels not built")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: str(t)[6:])
@pytest.mark.parametrize("n", [1, 8, 33])
def test_cpp_bit_identical_to_reference(n, dtype):
    args = linear_case(n, n, 576, 96, dtype, torch.int64, "in+omask+obias")
    assert torch.equal(torch.ops.steerfast.steer_linear(*args), reference.steer_linear_ref(*args))


def test_dispatch_steer_linear():
    args = linear_case(3, 4, 123, 50, torch.float32, torch.int64, "in+obias")
    out = ops.steer_linear(*args)
    check_linear(out, args)
