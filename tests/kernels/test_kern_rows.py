"""steerfast::steer_rows_ on CPU (the C++ kernel, or the reference when it is the fallback)
against the fp64 oracle, plus bit-identity with the torch reference."""

import itertools

import pytest
import torch
from kern_oracle import DTYPES, HIDDEN, assert_rows_close, rows_case, steer_rows64

import steerfast.ops as ops
from steerfast.ops import library, reference

SHAPES = [(1, 576), (5, 123), (3, 896), (4, 2048), (2, 4096), (16, 64), (0, 32), (600, 40)]
KINDS = ("mask", "bias", "both")
CASES = list(itertools.product(SHAPES, KINDS, DTYPES, (torch.int32, torch.int64)))


def _id(case):
    (n, d), kinds, dtype, sdt = case
    return f"{n}x{d}-{kinds}-{str(dtype)[6:]}-{str(sdt)[6:]}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_steer_rows_matches_fp64(case):
    (n, d), kinds, dtype, sdt = case
    seed = CASES.index(case)
    y, slots, mask, delta, bias, coef = rows_case(seed, n, d, dtype, sdt, kinds)
    out = y.clone()
    torch.ops.steerfast.steer_rows_(out, slots, mask, delta, bias, coef)
    expect, scale = steer_rows64(y, slots, mask, delta, bias, coef)
    assert_rows_close(out, y, slots, expect, scale, dtype)


@pytest.mark.skipif(not library.fused_available(), reason="C++ kernels not built")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: str(t)[6:])
@pytest.mark.parametrize("d", HIDDEN)
def test_cpp_bit_identical_to_reference(d, dtype):
    y, slots, mask, delta, bias, coef = rows_case(d, 7, d, dtype, torch.int64, "both")
    a, b = y.clone(), y.clone()
    torch.ops.steerfast.steer_rows_(a, slots, mask, delta, bias, coef)
    reference.steer_rows_ref_(b, slots, mask, delta, bias, coef)
    assert torch.equal(a, b)


def test_no_tables_is_a_no_op():
    y, slots, *_ = rows_case(0, 5, 123, torch.float32, torch.int64, "none")
    out = y.clone()
    torch.ops.steerfast.steer_rows_(out, slots, None, None, None, None)
    assert torch.equal(out, y)


@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_dispatch_backends(backend):
    if backend == "fused" and ops.get_backend() != "fused":
        pytest.skip("fused backend unavailable")
    prev = ops.get_backend()
    ops.set_backend(backend)
    try:
        assert ops.get_backend() == backend
        y, slots, mask, delta, bias, coef = rows_case(11, 5, 123, torch.bfloat16, torch.int32, "both")
        out = y.clone()
        assert ops.steer_rows_(out, slots, mask, delta, bias, coef) is None
        expect, scale = steer_rows64(y, slots, mask, delta, bias, coef)
        assert_rows_close(out, y, slots, expect, scale, torch.bfloat16)
    finally:
        ops.set_backend(prev)


def test_large_rows_parallel_path():
    # N*D well above the parallel grain: exercises at::parallel_for chunks.
    y, slots, mask, delta, bias, coef = rows_case(5, 257, 2048, torch.float16, torch.int64, "both")
    a, b = y.clone(), y.clone()
    torch.ops.steerfast.steer_rows_(a, slots, mask, delta, bias, coef)
    reference.steer_rows_ref_(b, slots, mask, delta, bias, coef)
    if library.fused_available():
        assert torch.equal(a, b)
    expect, scale = steer_rows64(y, slots, mask, delta, bias, coef)
    assert_rows_close(a, y, slots, expect, scale, torch.float16)
