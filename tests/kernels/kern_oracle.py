"""fp64 oracle of the steering ops (written from the Semantics blocks) and case builders."""

from __future__ import annotations

import torch

UNIT_ROUNDOFF = {torch.float32: 2.0**-24, torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}
_MANTISSA = {torch.float32: 23, torch.float16: 10, torch.bfloat16: 7}
_MIN_EXP = {torch.float32: -126, torch.float16: -14, torch.bfloat16: -126}
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
HIDDEN = (576, 896, 2048, 4096)  # SmolLM2-135M, Qwen2-0.5B, LLaMA-3.2-1B, LLaMA-2-7B


def ulp(v: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Spacing of `dtype` numbers at |v| (fp64 in, fp64 out; subnormals included)."""
    a = v.abs().clamp(min=torch.finfo(torch.float64).tiny)
    e = torch.floor(torch.log2(a)).clamp(min=_MIN_EXP[dtype])
    return torch.exp2(e - _MANTISSA[dtype])


def steer_rows64(y, slots, mask, delta, bias, coef):
    """(result, scale): the exact fp64 result of steer_rows_ and the magnitude of its terms."""
    a = y.double().clone()
    scale = a.abs().clone()
    for r, s in enumerate(slots.tolist()):
        if s < 0:
            continue
        v = a[r]
        t = v.abs()
        if mask is not None:
            dm = delta[s].double() * mask[s].double()
            v = v * (1 + dm)
            t = t * (1 + dm.abs())  # 1 + dm cancels when dm ~ -1
        if bias is not None:
            b = coef[s].double() * bias[s].double()
            v = v + b
            t = t + b.abs()
        a[r] = v
        scale[r] = t
    return a, scale


def assert_rows_close(out, y_in, slots, expect, scale, dtype, extra=None):
    """Unsteered rows bit-identical to the input; steered rows within one rounding of fp64.

    fp32: rtol 1e-6 plus 4 fp32 roundings of the terms' magnitude (cancellation).
    fp16/bf16: one ulp of the dtype at the result plus the same fp32 slack.
    `extra` adds a per-element error allowance (used by steer_linear for the GEMM).
    """
    assert out.dtype == dtype and out.shape == y_in.shape
    keep = slots < 0
    assert torch.equal(out[keep], y_in[keep]), "a row with slot -1 was modified"
    o = out.double()
    bound = 4 * 2.0**-24 * scale
    if dtype == torch.float32:
        bound = bound + 1e-6 * expect.abs()
    else:
        bound = bound + ulp(torch.maximum(expect.abs(), o.abs()), dtype)
    if extra is not None:
        bound = bound + extra
    err = (o - expect).abs()
    sel = ~keep
    bad = (err > bound) & sel.unsqueeze(1)
    assert not torch.isnan(o).any(), "NaN in the output"
    assert not bad.any(), (
        f"{int(bad.sum())} elements off; worst err {err[bad].max().item():.3g} "
        f"vs bound {bound[bad].min().item():.3g}"
    )


def make_slots(n: int, e: int, gen: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """Unsorted slots with -1 rows and duplicates mixed in (when there are enough rows)."""
    s = torch.randint(-1, e, (n,), generator=gen)
    if n >= 3:
        s[n // 2] = -1
        s[0] = s[n - 1] = e - 1
    if n >= 5:
        s[1] = 0
    return s.to(dtype)


def make_table(e: int, width: int, gen: torch.Generator, slots: torch.Tensor, binary: bool):
    """An (E, width) fp32 table and (E,) strengths; entries no row uses are NaN, so reading
    the wrong entry shows up."""
    if binary:
        t = (torch.rand(e, width, generator=gen) > 0.5).float()
    else:
        t = torch.randn(e, width, generator=gen)
    k = torch.randn(e, generator=gen) * 2
    used = torch.zeros(e, dtype=torch.bool)
    used[slots[slots >= 0].long()] = True
    t[~used] = float("nan")
    k[~used] = float("nan")
    return t, k


def rows_case(seed: int, n: int, d: int, dtype, slot_dtype, kinds: str, e: int = 4):
    """Inputs of steer_rows_: y, slots, mask, delta, bias, coef (kinds: mask|bias|both|none)."""
    gen = torch.Generator().manual_seed(seed)
    y = (torch.randn(n, d, generator=gen) * 3).to(dtype)
    slots = make_slots(n, e, gen, slot_dtype)
    mask = delta = bias = coef = None
    if kinds in ("mask", "both"):
        mask, delta = make_table(e, d, gen, slots, binary=seed % 2 == 0)
    if kinds in ("bias", "both"):
        bias, coef = make_table(e, d, gen, slots, binary=False)
    return y, slots, mask, delta, bias, coef


def linear_case(
    seed: int, n: int, k: int, o: int, dtype, slot_dtype, kinds: str, lin_bias: bool = True, e: int = 3
):
    """Inputs of steer_linear. kinds: any of 'in', 'omask', 'obias' joined by '+', or 'none'."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, k, generator=gen).to(dtype)
    w = (torch.randn(o, k, generator=gen) / k**0.5).to(dtype)
    b = torch.randn(o, generator=gen).to(dtype) if lin_bias else None
    slots = make_slots(n, e, gen, slot_dtype)
    parts = kinds.split("+")
    im = idl = om = od = ob = oc = None
    if "in" in parts:
        im, idl = make_table(e, k, gen, slots, binary=True)
    if "omask" in parts:
        om, od = make_table(e, o, gen, slots, binary=True)
    if "obias" in parts:
        ob, oc = make_table(e, o, gen, slots, binary=False)
    return x, w, b, slots, im, idl, om, od, ob, oc


def check_linear(out, args):
    """steer_linear's output against the fp64 Semantics, with the rounding points of the
    contract (x' and the linear's output are stored in the activation dtype)."""
    x, w, b, slots, im, idl, om, od, ob, oc = args
    dtype = x.dtype
    u = UNIT_ROUNDOFF[dtype]
    xs64, _ = steer_rows64(x, slots, im, idl, None, None)
    xs = xs64.to(dtype).double()
    x_err = 2 * u * xs64.abs() if im is not None else torch.zeros_like(xs64)
    w64 = w.double()
    lin = xs @ w64.T + (b.double() if b is not None else 0.0)
    mag = (xs.abs() + x_err) @ w64.abs().T + (b.double().abs() if b is not None else 0.0)
    k = x.shape[1]
    # fp32 accumulation over K, a flipped rounding of x', and a flipped rounding of y_lin
    y_err = (k + 2) * 2.0**-24 * mag + x_err @ w64.abs().T + ulp(lin, dtype)
    y_lin = lin.to(dtype)
    expect, scale = steer_rows64(y_lin, slots, om, od, ob, oc)
    amp = torch.ones_like(lin)
    for r, s in enumerate(slots.tolist()):
        if s >= 0 and om is not None:
            amp[r] = (1 + od[s].double() * om[s].double()).abs()
    extra = amp * y_err
    assert out.shape == (x.shape[0], w.shape[0]) and out.dtype == dtype
    assert not torch.isnan(out).any(), "NaN in the output (an element was never written)"
    # unsteered rows: the plain linear, to the same GEMM bound
    keep = slots < 0
    if keep.any():
        err = (out[keep].double() - lin[keep]).abs()
        assert (err <= y_err[keep] + ulp(lin[keep], dtype)).all(), "unsteered row off"
    steered = ~keep
    if steered.any():
        o = out.double()
        bound = extra + 4 * 2.0**-24 * scale + ulp(torch.maximum(expect.abs(), o.abs()), dtype)
        err = (o - expect).abs()
        bad = (err > bound) & steered.unsqueeze(1)
        assert not bad.any(), f"{int(bad.sum())} elements off; worst {err[bad].max().item():.3g}"
