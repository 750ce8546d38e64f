"""Triton kernel of steerfast::steer_rows_ (the CUDA implementation).

Semantics:
    for r in range(N):
        s = slots[r]
        if s < 0: continue
        a = float32(y[r])
        if mask is not None: a = a * (1 + delta[s] * mask[s])
        if bias is not None: a = a + coef[s] * bias[s]
        y[r] = a.to(y.dtype)

Slots >= E are undefined on CUDA (checking them would need a host sync); the kernel skips
such rows instead of reading out of bounds. The CPU kernel raises on them.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor


@triton.jit
def _steer_rows_kernel(
    y_ptr,
    slots_ptr,
    mask_ptr,
    delta_ptr,
    bias_ptr,
    coef_ptr,
    D,
    E,
    HAS_MASK: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    row = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    s = tl.load(slots_ptr + row).to(tl.int64)
    active = (s >= 0) & (s < E)
    s_safe = tl.where(active, s, 0)
    # unsteered rows are neither read nor written; written as one comparison because the
    # Triton interpreter turns (block & scalar) into int32, which tl.load rejects as a mask
    io_mask = cols < tl.where(active, D, 0)
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
    tl.store(y_ptrs, a.to(y_ptr.dtype.element_ty), mask=io_mask)


def _block_d(D: int) -> int:
    return min(1024, triton.next_power_of_2(max(D, 16)))


def launch_steer_rows(
    y: Tensor,
    slots: Tensor,
    mask: Tensor | None,
    delta: Tensor | None,
    bias: Tensor | None,
    coef: Tensor | None,
) -> None:
    N, D = y.shape
    if N == 0 or D == 0 or (mask is None and bias is None):
        return
    E = min(t.shape[0] for t in (mask, bias) if t is not None)
    block = _block_d(D)
    grid = (N, triton.cdiv(D, block))
    _steer_rows_kernel[grid](
        y,
        slots,
        mask if mask is not None else y,
        delta if delta is not None else y,
        bias if bias is not None else y,
        coef if coef is not None else y,
        D,
        E,
        HAS_MASK=mask is not None,
        HAS_BIAS=bias is not None,
        BLOCK_D=block,
        num_warps=4 if block >= 512 else 2,
    )


def check_rows(what: str, y: Tensor, slots: Tensor, tables) -> None:
    """Shape/dtype checks on the host (metadata only, no device sync)."""
    if y.dim() != 2 or not y.is_contiguous():
        raise ValueError(f"{what}: expected a 2-D contiguous (rows, D) activation")
    if y.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise TypeError(f"{what}: activation dtype must be float32/float16/bfloat16, got {y.dtype}")
    if slots.dim() != 1 or slots.shape[0] != y.shape[0] or not slots.is_contiguous():
        raise ValueError(f"{what}: slots must be contiguous 1-D with one entry per row")
    if slots.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"{what}: slots must be int32 or int64, got {slots.dtype}")
    if slots.device != y.device:
        raise ValueError(f"{what}: slots are on {slots.device} but the activation is on {y.device}")
    for name, table, strength, width in tables:
        if (table is None) != (strength is None):
            raise ValueError(f"{what}: {name} and its strength must be given together or both None")
        if table is None:
            continue
        if (
            table.dim() != 2
            or table.shape[1] != width
            or not table.is_contiguous()
            or table.dtype != torch.float32
            or strength.dtype != torch.float32
            or strength.shape != (table.shape[0],)
            or not strength.is_contiguous()
        ):
            raise ValueError(
                f"{what}: {name} must be contiguous fp32 (E, {width}) with an fp32 (E,) strength"
            )
        if table.device != y.device or strength.device != y.device:
            raise ValueError(f"{what}: {name} must be on {y.device}")


def steer_rows_(
    y: Tensor,
    slots: Tensor,
    mask: Tensor | None,
    delta: Tensor | None,
    bias: Tensor | None,
    coef: Tensor | None,
) -> None:
    """Scale and shift selected rows of ``y`` in place (see the module docstring)."""
    D = y.shape[-1] if y.dim() else 0
    check_rows("steerfast::steer_rows_", y, slots, [("mask", mask, delta, D), ("bias", bias, coef, D)])
    launch_steer_rows(y, slots, mask, delta, bias, coef)
