"""Torch reference of the steering ops: the test oracle and the fallback backend.

Shapes (the whole contract; the C++ and Triton kernels implement exactly this):
    y, x    (N, D) activation rows, fp32 / fp16 / bf16, contiguous
    slots   (N,)   int32 or int64: the table entry of each row, -1 = row untouched
    mask    (E, D) fp32 scale mask, delta (E,) fp32 strength   -- both given or both None
    bias    (E, D) fp32 additive vector, coef (E,) fp32 strength -- both given or both None
Arithmetic in fp32 (fp64 for fp64 activations), the result stored in the activation's dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor


def math_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp32 for fp32 and the half types, fp64 for fp64 (an exact-comparison model stays exact)."""
    return torch.promote_types(dtype, torch.float32)


def steer_rows_ref_(
    y: Tensor,
    slots: Tensor,
    mask: Tensor | None,
    delta: Tensor | None,
    bias: Tensor | None,
    coef: Tensor | None,
) -> Tensor:
    """Scale and shift selected rows of ``y`` in place.

    Semantics:
        for r in range(N):
            s = slots[r]
            if s < 0: continue
            a = float32(y[r])
            if mask is not None: a = a * (1 + delta[s] * mask[s])
            if bias is not None: a = a + coef[s] * bias[s]
            y[r] = a.to(y.dtype)
    """
    src = y
    if mask is not None and torch.is_grad_enabled() and (mask.requires_grad or delta.requires_grad):
        src = y.clone()  # the mask's gradient reads the unedited rows; y.copy_ below edits them
    y.copy_(steer_rows_ref(src, slots, mask, delta, bias, coef))
    return y


def steer_linear_ref(
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
    """Prologue scale, linear, epilogue scale/shift in one call; ``x`` is not modified.

    Semantics:
        x' = x.clone(); steer_rows_(x', slots, in_mask, in_delta, None, None)
        y  = x' @ weight.T + lin_bias
        steer_rows_(y, slots, out_mask, out_delta, out_bias, out_coef)
        return y
    """
    xs = x
    if in_mask is not None:
        xs = steer_rows_ref_(x.clone(), slots, in_mask, in_delta, None, None)
    y = torch.nn.functional.linear(xs, weight, lin_bias)
    if out_mask is not None or out_bias is not None:
        steer_rows_ref_(y, slots, out_mask, out_delta, out_bias, out_coef)
    return y


def steer_rows_ref(
    y: Tensor,
    slots: Tensor,
    mask: Tensor | None,
    delta: Tensor | None,
    bias: Tensor | None,
    coef: Tensor | None,
) -> Tensor:
    """Out of place: the rows of ``y`` steered as ``steer_rows_ref_`` would, ``y`` untouched.

    Plain gathers, mul, add and a where: the form torch.compile's Inductor fuses into the
    projection's epilogue (an opaque custom op would be a fusion barrier).
    """
    sel = (slots >= 0).unsqueeze(1)
    idx = slots.clamp(min=0).long()
    a = y.to(math_dtype(y.dtype))
    if mask is not None:
        a = a * (1.0 + delta[idx].unsqueeze(1) * mask[idx])
    if bias is not None:
        a = a + coef[idx].unsqueeze(1) * bias[idx]
    return torch.where(sel, a.to(y.dtype), y)


def steer_ablate_ref(
    y: Tensor,
    slots: Tensor,
    mask: Tensor | None,
    delta: Tensor | None,
    bias: Tensor | None,
    coef: Tensor | None,
    direction: Tensor,
    alpha: Tensor,
) -> Tensor:
    """Out of place: scale, shift, then directional ablation of selected rows; ``y`` untouched.

    Semantics:
        for r in range(N):
            s = slots[r]
            if s < 0: continue
            a = float32(y[r])
            if mask is not None: a = a * (1 + delta[s] * mask[s])
            if bias is not None: a = a + coef[s] * bias[s]
            a = a - (alpha[s] * dot(a, direction[s])) * direction[s]     # direction[s] unit
            y[r] = a.to(y.dtype)
    The ablation comes last: a plan's scale/add before an ablate at the same site share its
    entry; anything after an ablate goes to a later lane (runtime/lanes.py), so plan order holds.
    alpha = 1 removes the component along the direction, 0 < alpha < 1 shrinks it, alpha = 2
    flips it. Plain torch ops (the compiled-graph form; Inductor fuses the reduction).
    """
    sel = (slots >= 0).unsqueeze(1)
    idx = slots.clamp(min=0).long()
    a = y.to(math_dtype(y.dtype))
    if mask is not None:
        a = a * (1.0 + delta[idx].unsqueeze(1) * mask[idx])
    if bias is not None:
        a = a + coef[idx].unsqueeze(1) * bias[idx]
    r = direction[idx].to(a.dtype)
    dot = (a * r).sum(1, keepdim=True)
    a = a - (alpha[idx].to(a.dtype).unsqueeze(1) * dot) * r
    return torch.where(sel, a.to(y.dtype), y)


def steer_ablate_ref_(
    y: Tensor,
    slots: Tensor,
    mask: Tensor | None,
    delta: Tensor | None,
    bias: Tensor | None,
    coef: Tensor | None,
    direction: Tensor,
    alpha: Tensor,
) -> Tensor:
    """In place form of ``steer_ablate_ref`` (the op ``steerfast::steer_ablate_``)."""
    src = y.clone() if torch.is_grad_enabled() else y
    y.copy_(steer_ablate_ref(src, slots, mask, delta, bias, coef, direction, alpha))
    return y
