"""Triton kernel of steerfast::steer_ablate_ (the CUDA implementation).

Semantics:
    for r in range(N):
        s = slots[r]
        if s < 0: continue
        a = float32(y[r])
        if mask is not None: a = a * (1 + delta[s] * mask[s])
        if bias is not None: a = a + coef[s] * bias[s]
        a = a - (alpha[s] * dot(a, direction[s])) * direction[s]
        y[r] = a.to(y.dtype)

One program per row, the whole row in one block (the dot product is a reduction over D, and
the rank-1 update needs it before anything is stored): one read and one write of the row.
The dot product is Triton's fp32 tree reduction; the elementwise parts round as the
reference does. Slots >= E are skipped (no host sync to check them), as in steer_rows_.
"""

from __future__ import annotations

import triton
import triton.language as tl
from torch import Tensor

from .steer_rows import check_rows

MAX_D = 1 << 16


@triton.jit
def _steer_ablate_kernel(
    y_ptr,
    slots_ptr,
    mask_ptr,
    delta_ptr,
    bias_ptr,
    coef_ptr,
    dir_ptr,
    alpha_ptr,
    D,
    E,
    HAS_MASK: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK_D)
    s = tl.load(slots_ptr + row).to(tl.int64)
    active = (s >= 0) & (s < E)
    s_safe = tl.where(active, s, 0)
    io_mask = cols < tl.where(active, D, 0)  # see steer_rows.py: one comparison
    y_ptrs = y_ptr + row.to(tl.int64) * D + cols
    a = tl.load(y_ptrs, mask=io_mask, other=0.0).to(tl.float32)
    if HAS_MASK:
        m = tl.load(mask_ptr + s_safe * D + cols, mask=io_mask, other=0.0)
        d = tl.load(delta_ptr + s_safe)
        a = a * (1.0 + d * m)
    if HAS_BIAS:
        b = tl.load(bias_ptr + s_safe * D + cols, mask=io_mask, other=0.0)
        c = tl.load(coef_ptr + s_safe)
        a = a + c * b
    r = tl.load(dir_ptr + s_safe * D + cols, mask=io_mask, other=0.0)
    dot = tl.sum(a * r, axis=0)
    k = tl.load(alpha_ptr + s_safe) * dot
    a = a - k * r
    tl.store(y_ptrs, a.to(y_ptr.dtype.element_ty), mask=io_mask)


def launch_steer_ablate(y, slots, mask, delta, bias, coef, direction, alpha) -> None:
    N, D = y.shape
    if N == 0 or D == 0:
        return
    E = min(t.shape[0] for t in (mask, bias, direction) if t is not None)
    block = triton.next_power_of_2(max(D, 16))
    _steer_ablate_kernel[(N,)](
        y,
        slots,
        mask if mask is not None else y,
        delta if delta is not None else y,
        bias if bias is not None else y,
        coef if coef is not None else y,
        direction,
        alpha,
        D,
        E,
        HAS_MASK=mask is not None,
        HAS_BIAS=bias is not None,
        BLOCK_D=block,
        num_warps=8 if block >= 2048 else 4,
    )


def steer_ablate_(
    y: Tensor,
    slots: Tensor,
    mask: Tensor | None,
    delta: Tensor | None,
    bias: Tensor | None,
    coef: Tensor | None,
    direction: Tensor,
    alpha: Tensor,
) -> None:
    """Scale, shift and ablate selected rows of ``y`` in place (see the module docstring)."""
    D = y.shape[-1] if y.dim() else 0
    check_rows(
        "steerfast::steer_ablate_",
        y,
        slots,
        [("mask", mask, delta, D), ("bias", bias, coef, D), ("direction", direction, alpha, D)],
    )
    if D > MAX_D:
        raise ValueError(f"steerfast::steer_ablate_: rows wider than {MAX_D} are not supported, got {D}")
    launch_steer_ablate(y, slots, mask, delta, bias, coef, direction, alpha)
