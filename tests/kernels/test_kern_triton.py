"""The Triton kernels on CPU tensors through the Triton interpreter, against the fp64 oracle.

TRITON_INTERPRET is set before triton is imported here, and a private copy of the kernels
package is loaded under it (triton decides interpreted vs compiled when a kernel is
decorated, so a copy imported earlier without the variable would not do). The variable stays
set only while this module's tests run.

The interpreter rounds fp32 -> bf16 by truncation (GPUs round to nearest even), so bf16 is
held to one bf16 ulp here, which truncation also meets.
"""

import itertools
import os

_PREV = os.environ.get("TRITON_INTERPRET")
os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

triton = pytest.importorskip("triton")

from kern_oracle import DTYPES, assert_rows_close, check_linear, linear_case, rows_case, steer_rows64  # noqa: E402

from steerfast.ops import kernel_modules  # noqa: E402


def _load_interpreted_kernels():
    """The kernel modules imported afresh under a private package name (not steerfast.kernels,
    which a compiled copy may already occupy) while TRITON_INTERPRET is set."""
    return kernel_modules.load("_steerfast_kernels_interpreted")


K = _load_interpreted_kernels()
# the package's `steer_linear` attribute is the wrapper function, so reach modules directly
ROWS_MOD = K.modules["steer_rows"]
LINEAR_MOD = K.modules["steer_linear"]


def _restore_env():
    if _PREV is None:
        os.environ.pop("TRITON_INTERPRET", None)
    else:
        os.environ["TRITON_INTERPRET"] = _PREV


_restore_env()


@pytest.fixture(autouse=True, scope="module")
def _interpret():
    os.environ["TRITON_INTERPRET"] = "1"
    yield
    _restore_env()


def test_kernels_are_interpreted():
    from triton.runtime.interpreter import InterpretedFunction

    assert isinstance(ROWS_MOD._steer_rows_kernel, InterpretedFunction)
    assert isinstance(LINEAR_MOD._steer_linear_kernel, InterpretedFunction)


ROW_SHAPES = [(1, 576), (5, 123), (12, 40), (0, 16)]
ROW_CASES = list(itertools.product(ROW_SHAPES, ("mask", "bias", "both"), DTYPES, (torch.int32, torch.int64)))


@pytest.mark.parametrize(
    "case", ROW_CASES, ids=[f"{n}x{d}-{k}-{str(t)[6:]}-{str(s)[6:]}" for (n, d), k, t, s in ROW_CASES]
)
def test_triton_steer_rows(case):
    (n, d), kinds, dtype, sdt = case
    y, slots, mask, delta, bias, coef = rows_case(100 + ROW_CASES.index(case), n, d, dtype, sdt, kinds)
    out = y.clone()
    K.steer_rows_(out, slots, mask, delta, bias, coef)
    expect, scale = steer_rows64(y, slots, mask, delta, bias, coef)
    assert_rows_close(out, y, slots, expect, scale, dtype)


LIN_SHAPES = [(1, 576, 24), (5, 123, 37), (3, 64, 16), (12, 40, 24)]  # 12 > SMALL_M: unfused path
LIN_CASES = list(itertools.product(LIN_SHAPES, ("in+omask+obias", "in", "obias", "none"), DTYPES))


@pytest.mark.parametrize(
    "case", LIN_CASES, ids=[f"{n}x{k}x{o}-{kd}-{str(t)[6:]}" for (n, k, o), kd, t in LIN_CASES]
)
def test_triton_steer_linear(case):
    (n, k, o), kinds, dtype = case
    seed = 200 + LIN_CASES.index(case)
    sdt = torch.int32 if seed % 2 else torch.int64
    args = linear_case(seed, n, k, o, dtype, sdt, kinds, lin_bias=seed % 3 != 0)
    x_before = args[0].clone()
    if n <= LINEAR_MOD.SMALL_M:
        out = torch.full((n, o), float("nan"), dtype=dtype)  # poisoned: every element written?
        K.launch_steer_linear(*args, out=out)
    else:
        out = K.steer_linear(*args)
    assert torch.equal(args[0], x_before), "x was modified"
    check_linear(out, args)


def test_triton_wrapper_rejects_non_contiguous():
    y = torch.randn(8, 4).t()
    with pytest.raises(ValueError, match="contiguous"):
        K.steer_rows_(y, torch.zeros(4, dtype=torch.long), torch.ones(1, 8), torch.ones(1), None, None)


def test_triton_out_of_range_slot_is_skipped():
    y = torch.randn(3, 16)
    out = y.clone()
    K.steer_rows_(out, torch.tensor([0, 7, -1]), None, None, torch.ones(2, 16), torch.ones(2))
    assert torch.equal(out[1:], y[1:]) and torch.equal(out[0], y[0] + 1)
