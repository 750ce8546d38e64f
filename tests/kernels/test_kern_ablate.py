"""steerfast::steer_ablate_: the fp64 oracle (ablate alone and after scale + add), the C++
kernel and the Triton kernel (interpreter), bit-identity where the arithmetic order is the
same, gradcheck on both backends, opcheck.

The ablation's dot product is a reduction: the reference sums in fp32 (torch's order), the
C++ kernel in fp64 sequentially, Triton in an fp32 tree, so those three agree with the fp64
oracle to a bound derived from fp32 rounding of the terms (below), not bit for bit. With a
zero direction the op is exactly steer_rows_'s affine, in the same order: bit-identical.
"""

import itertools
import os

_PREV = os.environ.get("TRITON_INTERPRET")
os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402
from kern_oracle import DTYPES, make_slots, steer_rows64, ulp  # noqa: E402

from steerfast import ops  # noqa: E402
from steerfast.ops import kernel_modules, library, reference  # noqa: E402


def _load_interpreted_kernels():
    """The kernel modules imported afresh under a private package name (not steerfast.kernels,
    which a compiled copy may already occupy) while TRITON_INTERPRET is set."""
    return kernel_modules.load("_steerfast_kernels_interpreted")


try:
    import triton  # noqa: F401

    K = _load_interpreted_kernels()
except ImportError:  # no triton: the Triton cases skip, the C++ ones still run
    K = None
if _PREV is None:
    os.environ.pop("TRITON_INTERPRET", None)
else:
    os.environ["TRITON_INTERPRET"] = _PREV

# triton is a dependency on Linux (pyproject), so in CI and `make test` these cases run; the skip
# only covers installs without it (other platforms), like test_kern_triton's importorskip
needs_triton = pytest.mark.skipif(K is None, reason="triton is not installed")
ABLATE = torch.ops.steerfast.steer_ablate_.default
ROWS = torch.ops.steerfast.steer_rows_.default


def ablate_case(seed, n, d, dtype, sdt, kinds, e=3):
    gen = torch.Generator().manual_seed(seed)
    y = (torch.randn(n, d, generator=gen) * 3).to(dtype)
    slots = make_slots(n, e, gen, sdt)
    mask = delta = bias = coef = None
    if "mask" in kinds:
        mask, delta = torch.rand(e, d, generator=gen), torch.randn(e, generator=gen)
    if "bias" in kinds:
        bias, coef = torch.randn(e, d, generator=gen), torch.randn(e, generator=gen)
    r = torch.randn(e, d, generator=gen)
    r = r / r.norm(dim=1, keepdim=True)
    alpha = torch.tensor([1.0, 0.5, 2.0])[:e]
    return y, slots, mask, delta, bias, coef, r, alpha


def ablate64(y, slots, mask, delta, bias, coef, r, alpha):
    """(exact fp64 result, per-element error bound for an fp32 implementation)."""
    a, scale = steer_rows64(y, slots, mask, delta, bias, coef)
    out, bound = a.clone(), torch.zeros_like(a)
    u = 2.0**-24
    d = y.shape[1]
    for i, s in enumerate(slots.tolist()):
        if s < 0:
            continue
        rr, al = r[s].double(), float(alpha[s])
        e = 4 * u * scale[i]  # the affine part's error, as in kern_oracle
        dot = (a[i] * rr).sum()
        out[i] = a[i] - al * dot * rr
        mag = (a[i].abs() * rr.abs()).sum()
        # the affine error through the projection, the dot's fp32 rounding, the final update
        bound[i] = e + abs(al) * (e * rr.abs()).sum() * rr.abs()
        bound[i] += abs(al) * (d + 2) * u * mag * rr.abs() + 2 * u * (out[i].abs() + abs(al * dot) * rr.abs())
    return out, bound


def check(out, case):
    y, slots = case[0], case[1]
    keep = slots < 0
    assert torch.equal(out[keep], y[keep]), "a row with slot -1 was modified"
    want, bound = ablate64(*case)
    if y.dtype != torch.float32:
        bound = bound + ulp(torch.maximum(want.abs(), out.double().abs()), y.dtype)
    err = (out.double() - want).abs()
    assert not torch.isnan(out).any()
    assert (err <= bound)[~keep].all(), f"worst err {err[~keep].max().item():.3g}"


SHAPES = [(1, 576), (6, 123), (9, 40), (0, 16)]
CASES = list(itertools.product(SHAPES, ("", "mask", "bias", "mask+bias"), DTYPES, (torch.int32, torch.int64)))
IDS = [f"{n}x{d}-{k or 'ablate'}-{str(t)[6:]}-{str(s)[6:]}" for (n, d), k, t, s in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cpp_and_reference_against_fp64_oracle(case):
    (n, d), kinds, dtype, sdt = case
    args = ablate_case(CASES.index(case), n, d, dtype, sdt, kinds)
    assert library.fused_available(), library.fallback_reason()
    out = args[0].clone()
    ABLATE(out, *args[1:])
    check(out, args)
    check(reference.steer_ablate_ref(*args), args)


@needs_triton
@pytest.mark.parametrize("case", CASES[::3], ids=IDS[::3])
def test_triton_against_fp64_oracle(case):
    (n, d), kinds, dtype, sdt = case
    args = ablate_case(500 + CASES.index(case), n, d, dtype, sdt, kinds)
    out = args[0].clone()
    K.steer_ablate_(out, *args[1:])
    if dtype == torch.bfloat16:  # the interpreter truncates fp32 -> bf16: one more bf16 ulp
        want, _ = ablate64(*args)
        err = (out.double() - want).abs()
        assert (err <= 2 * ulp(want, dtype) + 1e-3 * want.abs().max())[args[1] >= 0].all()
        assert torch.equal(out[args[1] < 0], args[0][args[1] < 0])
    else:
        check(out, args)


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_direction_is_steer_rows_bit_for_bit(dtype):
    """Same arithmetic order as steer_rows_ (a zero direction adds -0*0): C++, reference and
    Triton of the two ops agree bit for bit."""
    y, slots, mask, delta, bias, coef, r, alpha = ablate_case(7, 9, 130, dtype, torch.int32, "mask+bias")
    zero = torch.zeros_like(r)
    want = y.clone()
    ROWS(want, slots, mask, delta, bias, coef)
    got = y.clone()
    ABLATE(got, slots, mask, delta, bias, coef, zero, alpha)
    assert torch.equal(got, want)
    assert torch.equal(reference.steer_ablate_ref(y, slots, mask, delta, bias, coef, zero, alpha), want)
    if K is not None and dtype != torch.bfloat16:  # bf16: interpreter truncation, see above
        tri, tri_rows = y.clone(), y.clone()
        K.steer_ablate_(tri, slots, mask, delta, bias, coef, zero, alpha)
        K.steer_rows_(tri_rows, slots, mask, delta, bias, coef)
        assert torch.equal(tri, tri_rows)
        assert torch.equal(tri, want)


def test_alpha_one_removes_the_component():
    y, slots, _, _, _, _, r, alpha = ablate_case(3, 8, 576, torch.float32, torch.int64, "")
    out = y.clone()
    ABLATE(out, slots, None, None, None, None, r, torch.ones_like(alpha))
    for i, s in enumerate(slots.tolist()):
        if s >= 0:
            assert abs(float(out[i].double() @ r[s].double())) <= 1e-5 * float(y[i].norm())


BACKENDS = ["fused", "reference"]


@pytest.fixture
def backend(request):
    before = ops.get_backend()
    ops.set_backend(request.param)
    yield request.param
    ops.set_backend(before)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("kinds", ["", "mask+bias"])
def test_gradcheck_fp64(backend, kinds):
    y, slots, mask, delta, bias, coef, r, alpha = ablate_case(11, 6, 5, torch.float64, torch.int64, kinds)
    tables = [None if t is None else t.double().requires_grad_() for t in (mask, delta, bias, coef, r, alpha)]
    y = y.requires_grad_()

    def f(y, *tables):
        out = y * 1.0
        ops.steer_ablate_(out, slots, *tables)
        return out

    assert torch.autograd.gradcheck(f, [y, *tables])


def test_fused_fp32_gradients_match_reference():
    case = ablate_case(13, 9, 64, torch.float32, torch.int32, "mask+bias")
    grads = {}
    for name in BACKENDS:
        before = ops.get_backend()
        ops.set_backend(name)
        try:
            leaves = [t if t is None or t.dtype == torch.int32 else t.clone().requires_grad_() for t in case]
            out = leaves[0] * 1.0
            ops.steer_ablate_(out, *leaves[1:])
            (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
            grads[name] = [t.grad for t in leaves if t is not None and t.dtype != torch.int32]
        finally:
            ops.set_backend(before)
    for a, b in zip(grads["fused"], grads["reference"]):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kinds", ["", "mask+bias"])
def test_opcheck(kinds):
    args = ablate_case(17, 5, 24, torch.float32, torch.int64, kinds)
    torch.library.opcheck(ABLATE, args)


def test_cpp_rejects_bad_tables():
    y, slots, mask, delta, bias, coef, r, alpha = ablate_case(1, 4, 8, torch.float32, torch.int64, "")
    with pytest.raises(RuntimeError, match="direction"):
        ABLATE(y, slots, None, None, None, None, r[:, :4].contiguous(), alpha)
    with pytest.raises(RuntimeError, match="out of range"):
        ABLATE(y, torch.tensor([0, 5, -1, 1]), None, None, None, None, r, alpha)
