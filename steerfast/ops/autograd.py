"""Autograd for the fused ops: closed-form backward of the op contract (reference.py).

The compiled kernels (C++, Triton) have no derivative of their own. When a steered forward
runs with grad enabled and an input requires grad, ``steerfast.ops`` routes the call through
these Functions: the forward is the fused kernel (the reference for dtypes the kernels do not
take, e.g. fp64), the backward is the exact gradient of the reference semantics

    y[r] = a[r] * (1 + delta[s] * mask[s]) + coef[s] * bias[s]     (s = slots[r] >= 0)

with the rounding to the activation dtype treated as the identity (straight through).
Slots are integer indices: no gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .reference import math_dtype, steer_rows_ref_


def _entries(values: Tensor, idx: Tensor, like: Tensor) -> Tensor:
    """Sum of per-row values into their table entries (rows of unselected slots add 0)."""
    out = torch.zeros((like.shape[0],) + tuple(values.shape[1:]), dtype=values.dtype, device=values.device)
    return out.index_add_(0, idx, values).to(like.dtype)


def rows_backward(
    g: Tensor,
    y_in: Tensor | None,
    slots: Tensor,
    mask,
    delta,
    bias,
    coef,
    need: tuple[bool, bool, bool, bool, bool],
):
    """Gradients of steer_rows_ w.r.t. (y, mask, delta, bias, coef); None where not needed.

    y_in is the activation before the op; it is only read for the mask / delta gradients.
    """
    md = math_dtype(g.dtype)
    sel = (slots >= 0).unsqueeze(1)
    idx = slots.clamp(min=0).long()
    g_sel = torch.where(sel, g.to(md), torch.zeros((), dtype=md, device=g.device))
    gy = gmask = gdelta = gbias = gcoef = None
    if need[0]:
        gy = g
        if mask is not None:
            factor = 1.0 + delta[idx].to(md).unsqueeze(1) * mask[idx].to(md)
            gy = torch.where(sel, (g.to(md) * factor).to(g.dtype), g)
    if mask is not None and (need[1] or need[2]):
        ga = g_sel * y_in.to(md)
        if need[1]:
            gmask = _entries(ga * delta[idx].to(md).unsqueeze(1), idx, mask)
        if need[2]:
            gdelta = _entries((ga * mask[idx].to(md)).sum(1), idx, delta)
    if bias is not None:
        if need[3]:
            gbias = _entries(g_sel * coef[idx].to(md).unsqueeze(1), idx, bias)
        if need[4]:
            gcoef = _entries((g_sel * bias[idx].to(md)).sum(1), idx, coef)
    return gy, gmask, gdelta, gbias, gcoef


class SteerRows(torch.autograd.Function):
    """In place like the op: the caller's tensor is marked dirty and gets this node."""

    @staticmethod
    def forward(ctx, kernel: Callable, y, slots, mask, delta, bias, coef):
        need_in = mask is not None and (ctx.needs_input_grad[3] or ctx.needs_input_grad[4])
        y_in = y.clone() if need_in else None
        kernel(y, slots, mask, delta, bias, coef)
        ctx.mark_dirty(y)
        ctx.save_for_backward(y_in, slots, mask, delta, bias, coef)
        return y

    @staticmethod
    def backward(ctx, g):
        y_in, slots, mask, delta, bias, coef = ctx.saved_tensors
        n = ctx.needs_input_grad  # (kernel, y, slots, mask, delta, bias, coef)
        grads = rows_backward(g, y_in, slots, mask, delta, bias, coef, (n[1], n[3], n[4], n[5], n[6]))
        return (None, grads[0], None) + tuple(grads[1:])


def _scaled_input(x, slots, in_mask, in_delta) -> Tensor:
    if in_mask is None:
        return x
    return steer_rows_ref_(x.clone(), slots, in_mask, in_delta, None, None)


class SteerLinear(torch.autograd.Function):
    """Prologue scale, linear, epilogue: x -> rows_out(linear(rows_in(x)))."""

    @staticmethod
    def forward(
        ctx,
        kernel: Callable,
        x,
        weight,
        lin_bias,
        slots,
        in_mask,
        in_delta,
        out_mask,
        out_delta,
        out_bias,
        out_coef,
    ):
        ctx.save_for_backward(
            x, weight, lin_bias, slots, in_mask, in_delta, out_mask, out_delta, out_bias, out_coef
        )
        return kernel(x, weight, lin_bias, slots, in_mask, in_delta, out_mask, out_delta, out_bias, out_coef)

    @staticmethod
    def backward(ctx, g):
        (x, weight, lin_bias, slots, in_mask, in_delta, out_mask, out_delta, out_bias, out_coef) = (
            ctx.saved_tensors
        )
        need = ctx.needs_input_grad
        # (kernel, x, weight, lin_bias, slots, in_mask, in_delta, out_mask, out_delta, out_bias, out_coef)
        xs = _scaled_input(x, slots, in_mask, in_delta)
        z = None
        if out_mask is not None and (need[7] or need[8]):
            z = torch.nn.functional.linear(xs, weight, lin_bias)  # the pre-epilogue output
        gz, g_om, g_od, g_ob, g_oc = rows_backward(
            g,
            z,
            slots,
            out_mask,
            out_delta,
            out_bias,
            out_coef,
            (need[1] or need[2] or need[3] or need[5] or need[6], need[7], need[8], need[9], need[10]),
        )
        gx = gw = gb = g_im = g_id = None
        if need[2]:
            gw = gz.t().mm(xs.to(gz.dtype)).to(weight.dtype)
        if need[3] and lin_bias is not None:
            gb = gz.sum(0).to(lin_bias.dtype)
        if need[1] or need[5] or need[6]:
            gxs = gz.mm(weight.to(gz.dtype))
            gx, g_im, g_id, _, _ = rows_backward(
                gxs, x, slots, in_mask, in_delta, None, None, (need[1], need[5], need[6], False, False)
            )
            if gx is not None:
                gx = gx.to(x.dtype)
        return None, gx, gw, gb, None, g_im, g_id, g_om, g_od, g_ob, g_oc


def needs_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


class SteerAblate(torch.autograd.Function):
    """In place like the op. The backward differentiates the torch reference on the saved
    input (the map is rank-1 plus diagonal: autograd of the reference is its exact gradient,
    with the rounding to the activation dtype treated as the identity)."""

    @staticmethod
    def forward(ctx, kernel: Callable, y, slots, mask, delta, bias, coef, direction, alpha):
        y_in = y.clone()
        kernel(y, slots, mask, delta, bias, coef, direction, alpha)
        ctx.mark_dirty(y)
        ctx.save_for_backward(y_in, slots, mask, delta, bias, coef, direction, alpha)
        return y

    @staticmethod
    def backward(ctx, g):
        from .reference import steer_ablate_ref

        y_in, slots, mask, delta, bias, coef, direction, alpha = ctx.saved_tensors
        n = ctx.needs_input_grad  # (kernel, y, slots, mask, delta, bias, coef, direction, alpha)
        with torch.enable_grad():
            leaves = [
                None if t is None else t.detach().requires_grad_(bool(need))
                for t, need in zip(
                    (y_in, mask, delta, bias, coef, direction, alpha),
                    (n[1], n[3], n[4], n[5], n[6], n[7], n[8]),
                )
            ]
            out = steer_ablate_ref(leaves[0], slots, *leaves[1:])
            wanted = [t for t in leaves if t is not None and t.requires_grad]
            got = iter(torch.autograd.grad(out, wanted, g, allow_unused=True)) if wanted else iter(())
        grads = [next(got) if t is not None and t.requires_grad else None for t in leaves]
        return (None, grads[0], None) + tuple(grads[1:])
