"""The plain-hook baseline: the same plan applied with register_forward_(pre_)hook.

Ordinary torch ops on the whole (B, T, D) activation, positions re-derived in every hook.
It is the equivalence oracle of the patched runtime and the baseline of the benchmarks.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .adapters import get_adapter
from .errors import SteeringError
from .ops.reference import math_dtype
from .plan import Intervention, SteeringPlan
from .positions import CallTracker
from .runtime.shard import shard_columns


def _edit(
    tracker: CallTracker,
    iv: Intervention,
    t: Tensor,
    add_scale: float,
    columns: slice | None = None,
    gate=None,
) -> Tensor:
    sel, offset = tracker.info.select(iv.positions)
    if gate is not None:  # a gated intervention: only rows whose prompt met the condition
        sel = sel & gate["on"].unsqueeze(1)
    table = iv.tensor if columns is None else iv.tensor[:, columns]  # a TP rank's input shard
    vec = table.to(t.device)[offset.clamp(max=iv.entries - 1)]  # (B, T, D)
    a = t.to(math_dtype(t.dtype))
    if iv.kind == "scale":
        a = a * (1.0 + iv.strength * vec)
    elif iv.kind == "ablate":  # a projection: the site's add_scale (a multiplier) commutes with it
        r = vec.to(a.dtype)
        a = a - (iv.strength * (a * r).sum(-1, keepdim=True)) * r
    else:
        a = a + (iv.strength * add_scale) * vec
    return torch.where(sel.unsqueeze(-1).to(t.device), a.to(t.dtype), t)


def _condition_hooks(adapter, model, tracker: CallTracker, gate_spec, gate: dict) -> list:
    """Pre-hooks at each condition's layer: in a prompt forward (past 0), score the prompt
    and set gate["on"] (B,); later forwards keep it."""
    values: dict[int, Tensor] = {}
    layers = adapter.layer_modules(model)

    def reader(k, cond):
        def pre(mod, args, kwargs):
            info = tracker.info
            if info.past != 0:
                return None
            h = (args[0] if args else kwargs["hidden_states"]).float()
            m = info.masks()
            if cond.aggregate == "mean":
                w = m["prefix"].float().unsqueeze(-1)
                agg = (h * w).sum(1) / w.sum(1)
            else:
                agg = h[m["prompt_last"]]  # one prompt-last token per row
            score = agg @ cond.vector.to(h.device)
            values[k] = score > cond.threshold if cond.comparator == ">" else score < cond.threshold
            if len(values) == len(gate_spec.conditions):
                ons = [values[i] for i in range(len(values))]
                on = (
                    ons[0]
                    if len(ons) == 1
                    else (ons[0] | ons[1] if gate_spec.op == "or" else ons[0] & ons[1])
                )
                gate["on"] = on
            return None

        return pre

    def reset(mod, args, kwargs):
        if tracker.info is not None and tracker.info.past == 0:
            values.clear()
            gate["on"] = None

    handles = [model.get_submodule(adapter.base).register_forward_pre_hook(reset, with_kwargs=True)]
    for k, cond in enumerate(gate_spec.conditions):
        handles.append(layers[cond.layer].register_forward_pre_hook(reader(k, cond), with_kwargs=True))
    return handles


class HookHandle:
    def __init__(self, model, handles):
        self._model = model
        self._handles = handles

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        if self._handles:
            self._model.__dict__["_steerfast_hooks"] = self._model.__dict__.get("_steerfast_hooks", 1) - 1
        self._handles = []

    def __enter__(self) -> HookHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def apply_hooks(model: nn.Module, plan: SteeringPlan) -> HookHandle:
    adapter = get_adapter(model)
    if getattr(model, "_steerfast_handle", None) is not None:
        raise SteeringError(
            "model is patched by steerfast; revert() it before apply_hooks (both at once would steer twice)"
        )
    plan.validate(model)
    base = model.get_submodule(adapter.base)
    tracker = CallTracker(base.forward)

    order: list[tuple[dict, int, bool]] = []  # (module's hook dict, hook id, goes last)

    def begin(mod, args, kwargs):
        tracker.begin(args, kwargs)
        # docs/architecture.md, User hooks: the edit is part of the module's forward, as patch()
        # does it, whenever the user's hooks were registered: pre-hook edits after theirs,
        # forward-hook edits before theirs
        # (several edits on one module keep plan order: the front ones are moved in reverse)
        for hooks, hid, last in order:
            if last and hid in hooks:
                hooks.move_to_end(hid)
        for hooks, hid, last in reversed(order):
            if not last and hid in hooks:
                hooks.move_to_end(hid, last=False)

    handles = [base.register_forward_pre_hook(begin, with_kwargs=True)]
    gate: dict = {}
    if plan.condition is not None:
        handles += _condition_hooks(adapter, model, tracker, plan.condition, gate)
    flags = (
        plan.condition.flags(len(plan.interventions)) if plan.condition else [False] * len(plan.interventions)
    )
    for iv, gated in zip(plan.interventions, flags):
        site = adapter.site(model, iv.layer, iv.site)
        g = gate if gated else None
        if site.side == "in":

            def pre(mod, args, iv=iv, a=site.add_scale, g=g):
                x = args[0]
                columns = shard_columns(mod, x.shape[-1], iv.tensor.shape[-1])
                return (_edit(tracker, iv, x, a, columns, g),) + tuple(args[1:])

            handles.append(site.module.register_forward_pre_hook(pre))
            order.append((site.module._forward_pre_hooks, handles[-1].id, True))
        else:

            def post(mod, args, out, iv=iv, a=site.add_scale, g=g):
                if isinstance(out, tuple):
                    return (_edit(tracker, iv, out[0], a, gate=g),) + out[1:]
                return _edit(tracker, iv, out, a, gate=g)

            handles.append(site.module.register_forward_hook(post))
            order.append((site.module._forward_hooks, handles[-1].id, False))
    model.__dict__["_steerfast_hooks"] = model.__dict__.get("_steerfast_hooks", 0) + 1
    return HookHandle(model, handles)
