"""Bad inputs are rejected with a clear error (the C++ op on CPU)."""

import pytest
import torch

from steerfast.ops import library

# Why skip: these cases test the compiled C++ kernels; without a C++ compiler the ops run the
# torch reference (tested everywhere else). `make test` builds the kernels, so CI runs them.
pytestmark = pytest.mark.skipif(not library.fused_available(), reason="validation is done by the C++ kernels")

D, E = 16, 3


def _ok():
    y = torch.randn(4, D)
    slots = torch.tensor([0, -1, 2, 1])
    return dict(
        y=y,
        slots=slots,
        mask=torch.ones(E, D),
        delta=torch.ones(E),
        bias=torch.ones(E, D),
        coef=torch.ones(E),
    )


def _rows(**kw):
    a = _ok()
    a.update(kw)
    torch.ops.steerfast.steer_rows_(a["y"], a["slots"], a["mask"], a["delta"], a["bias"], a["coef"])


BAD_ROWS = {
    "non-contiguous": (dict(y=torch.randn(D, 4).t()), "contiguous"),
    "3-D": (dict(y=torch.randn(1, 4, D)), "2-D"),
    "fp64 activation": (dict(y=torch.randn(4, D, dtype=torch.float64)), "dtype"),
    "slots length": (dict(slots=torch.tensor([0, 1])), "one entry per row"),
    "float slots": (dict(slots=torch.zeros(4)), "int32 or int64"),
    "mask without delta": (dict(delta=None), "together"),
    "bias without coef": (dict(coef=None), "together"),
    "table width": (dict(mask=torch.ones(E, D + 1)), r"\(E, 16\)"),
    "fp16 table": (dict(bias=torch.ones(E, D, dtype=torch.float16)), "float32"),
    "strength length": (dict(delta=torch.ones(E + 1)), "length E"),
    "slot out of range": (dict(slots=torch.tensor([0, 3, -1, 1])), "out of range"),
    "slot out of range int32": (dict(slots=torch.tensor([0, 9, -1, 1], dtype=torch.int32)), "out of range"),
    "non-contiguous table": (dict(mask=torch.ones(D, E).t()), "contiguous"),
}


@pytest.mark.parametrize("name", list(BAD_ROWS))
def test_steer_rows_rejects(name):
    kw, msg = BAD_ROWS[name]
    with pytest.raises(RuntimeError, match=msg):
        _rows(**kw)


def test_strided_slots_and_strengths_are_read_correctly():
    a = _ok()
    slots = torch.tensor([[0, 9], [-1, 9], [2, 9], [1, 9]])[:, 0]  # stride 2
    delta = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])[:, 0]
    y = a["y"].clone()
    torch.ops.steerfast.steer_rows_(y, slots, a["mask"], delta, None, None)
    expect = a["y"] * torch.tensor([2.0, 1.0, 4.0, 3.0]).unsqueeze(1)
    assert torch.equal(y, expect)


def _linear(**kw):
    a = dict(
        x=torch.randn(4, D),
        weight=torch.randn(8, D),
        lin_bias=torch.randn(8),
        slots=torch.tensor([0, -1, 2, 1]),
        in_mask=torch.ones(E, D),
        in_delta=torch.ones(E),
        out_mask=torch.ones(E, 8),
        out_delta=torch.ones(E),
        out_bias=torch.ones(E, 8),
        out_coef=torch.ones(E),
    )
    a.update(kw)
    return torch.ops.steerfast.steer_linear(*a.values())


BAD_LINEAR = {
    "non-contiguous x": (dict(x=torch.randn(D, 4).t()), "contiguous"),
    "weight width": (dict(weight=torch.randn(8, D + 1)), r"weight must be \(O, 16\)"),
    "weight dtype": (dict(weight=torch.randn(8, D, dtype=torch.float16)), "dtype"),
    "lin_bias shape": (dict(lin_bias=torch.randn(9)), "lin_bias"),
    "out table width": (dict(out_bias=torch.ones(E, D)), r"\(E, 8\)"),
    "in table width": (dict(in_mask=torch.ones(E, 8)), r"\(E, 16\)"),
    "in_mask without delta": (dict(in_delta=None), "together"),
    "slot out of range": (dict(slots=torch.tensor([0, -1, 5, 1])), "out of range"),
}


@pytest.mark.parametrize("name", list(BAD_LINEAR))
def test_steer_linear_rejects(name):
    kw, msg = BAD_LINEAR[name]
    with pytest.raises(RuntimeError, match=msg):
        _linear(**kw)


def test_steer_linear_accepts_non_contiguous_weight():
    w = torch.randn(D, 8).t()
    x, b = torch.randn(4, D), torch.randn(8)
    out = _linear(x=x, weight=w, lin_bias=b)
    ref = _linear(x=x, weight=w.contiguous(), lin_bias=b)
    # a transposed weight is a different BLAS layout: its GEMM may sum in another order
    # (AMD EPYC: 8.9765 vs 8.9766), so equal up to fp32 rounding, not bit for bit
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
