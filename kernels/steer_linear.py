"""Triton kernel of steerfast::steer_linear (the CUDA implementation).

Semantics:
    x' = x.clone(); steer_rows_(x', slots, in_mask, in_delta, None, None)
    y  = x' @ weight.T + lin_bias          # rounded to x.dtype, as the reference's linear
    steer_rows_(y, slots, out_mask, out_delta, out_bias, out_coef)
    return y

Small M (decode, M <= SMALL_M) runs one GEMV-shaped kernel: each program owns BLOCK_N output
columns of a BLOCK_M-row block, loops over K, scales the x tile on load (prologue) and applies
the epilogue before the only store, so the steered activation never round-trips to memory.
Larger M is GEMM-bound: the prologue and epilogue run as steer_rows kernels around cuBLAS.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .steer_rows import check_rows, launch_steer_rows

SMALL_M = 8


@triton.jit
def _steer_linear_kernel(
    x_ptr,
    w_ptr,
    lin_bias_ptr,
    slots_ptr,
    in_mask_ptr,
    in_delta_ptr,
    out_mask_ptr,
    out_delta_ptr,
    out_bias_ptr,
    out_coef_ptr,
    y_ptr,
    M,
    K,
    O,
    E,
    stride_wn,
    stride_wk,
    HAS_LIN_BIAS: tl.constexpr,
    HAS_IN: tl.constexpr,
    HAS_OUT_MASK: tl.constexpr,
    HAS_OUT_BIAS: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < M
    s = tl.load(slots_ptr + rows, mask=row_ok, other=-1).to(tl.int64)
    active = (s >= 0) & (s < E) & row_ok
    s_safe = tl.where(active, s, 0)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    col_ok = cols < O
    rows64 = rows.to(tl.int64)
    cols64 = cols.to(tl.int64)
    act_dtype = x_ptr.dtype.element_ty

    if HAS_IN:
        d_in = tl.load(in_delta_ptr + s_safe, mask=active, other=0.0)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        k_ok = ks < K
        xf = tl.load(
            x_ptr + rows64[:, None] * K + ks[None, :], mask=row_ok[:, None] & k_ok[None, :], other=0.0
        ).to(tl.float32)
        if HAS_IN:
            m = tl.load(
                in_mask_ptr + s_safe[:, None] * K + ks[None, :],
                mask=active[:, None] & k_ok[None, :],
                other=0.0,
            )
            # rounded to the activation dtype, like the reference's scaled copy of x
            scaled = (xf * (1.0 + d_in[:, None] * m)).to(act_dtype).to(tl.float32)
            xf = tl.where(active[:, None], scaled, xf)
        w = tl.load(
            w_ptr + cols64[:, None] * stride_wn + ks[None, :] * stride_wk,
            mask=col_ok[:, None] & k_ok[None, :],
            other=0.0,
        ).to(tl.float32)
        acc += tl.sum(xf[:, None, :] * w[None, :, :], axis=2)

    if HAS_LIN_BIAS:
        acc += tl.load(lin_bias_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    out = acc.to(act_dtype).to(tl.float32)  # the linear's output in the activation dtype
    tab_mask = active[:, None] & col_ok[None, :]
    if HAS_OUT_MASK:
        om = tl.load(out_mask_ptr + s_safe[:, None] * O + cols64[None, :], mask=tab_mask, other=0.0)
        od = tl.load(out_delta_ptr + s_safe, mask=active, other=0.0)
        out = tl.where(active[:, None], out * (1.0 + od[:, None] * om), out)
    if HAS_OUT_BIAS:
        ob = tl.load(out_bias_ptr + s_safe[:, None] * O + cols64[None, :], mask=tab_mask, other=0.0)
        oc = tl.load(out_coef_ptr + s_safe, mask=active, other=0.0)
        out = tl.where(active[:, None], out + oc[:, None] * ob, out)
    tl.store(
        y_ptr + rows64[:, None] * O + cols64[None, :],
        out.to(act_dtype),
        mask=row_ok[:, None] & col_ok[None, :],
    )


def _blocks(M: int, O: int):
    block_m = triton.next_power_of_2(max(M, 1))
    block_k = 64 if block_m <= 2 else 32
    block_n = 32 if O >= 8192 else 16
    return block_m, block_n, block_k


def launch_steer_linear(
    x: Tensor,
    weight: Tensor,
    lin_bias: Tensor | None,
    slots: Tensor,
    in_mask: Tensor | None,
    in_delta: Tensor | None,
    out_mask: Tensor | None,
    out_delta: Tensor | None,
    out_bias: Tensor | None,
    out_coef: Tensor | None,
    out: Tensor,
) -> Tensor:
    """The fused small-M kernel, writing into a preallocated (M, O) ``out``."""
    M, K = x.shape
    O = weight.shape[0]
    if M == 0 or O == 0:
        return out
    tables = [t for t in (in_mask, out_mask, out_bias) if t is not None]
    E = min(t.shape[0] for t in tables) if tables else 0
    block_m, block_n, block_k = _blocks(M, O)
    grid = (triton.cdiv(O, block_n), triton.cdiv(M, block_m))
    _steer_linear_kernel[grid](
        x,
        weight,
        lin_bias if lin_bias is not None else x,
        slots,
        in_mask if in_mask is not None else x,
        in_delta if in_delta is not None else x,
        out_mask if out_mask is not None else x,
        out_delta if out_delta is not None else x,
        out_bias if out_bias is not None else x,
        out_coef if out_coef is not None else x,
        out,
        M,
        K,
        O,
        E,
        weight.stride(0),
        weight.stride(1),
        HAS_LIN_BIAS=lin_bias is not None,
        HAS_IN=in_mask is not None,
        HAS_OUT_MASK=out_mask is not None,
        HAS_OUT_BIAS=out_bias is not None,
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        BLOCK_K=block_k,
        num_warps=4,
    )
    return out


def steer_linear(
    x: Tensor,
    weight: Tensor,
    lin_bias: Tensor | None,
    slots: Tensor,
    in_mask: Tensor | None,
    in_delta: Tensor | None,
    out_mask: Tensor | None,
    out_delta: Tensor | None,
    out_bias: Tensor | None,
    out_coef: Tensor | None,
) -> Tensor:
    """Prologue scale, linear, epilogue scale/shift; ``x`` is not modified (see module doc)."""
    what = "steerfast::steer_linear"
    if weight.dim() != 2 or x.dim() != 2 or weight.shape[1] != x.shape[1]:
        raise ValueError(f"{what}: weight must be (O, D) with D = x.shape[1]")
    if weight.dtype != x.dtype or weight.device != x.device:
        raise ValueError(f"{what}: weight must have the activation's dtype and device")
    if lin_bias is not None and (
        lin_bias.shape != (weight.shape[0],) or lin_bias.dtype != x.dtype or not lin_bias.is_contiguous()
    ):
        raise ValueError(f"{what}: lin_bias must be contiguous (O,) in the activation's dtype")
    O = weight.shape[0]
    check_rows(
        what,
        x,
        slots,
        [
            ("in_mask", in_mask, in_delta, x.shape[1]),
            ("out_mask", out_mask, out_delta, O),
            ("out_bias", out_bias, out_coef, O),
        ],
    )
    if x.shape[0] <= SMALL_M:
        out = torch.empty((x.shape[0], O), dtype=x.dtype, device=x.device)
        return launch_steer_linear(
            x, weight, lin_bias, slots, in_mask, in_delta, out_mask, out_delta, out_bias, out_coef, out
        )
    xs = x
    if in_mask is not None:
        xs = x.clone()
        launch_steer_rows(xs, slots, in_mask, in_delta, None, None)
    y = torch.nn.functional.linear(xs, weight, lin_bias)
    launch_steer_rows(y, slots, out_mask, out_delta, out_bias, out_coef)
    return y
