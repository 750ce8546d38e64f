"""The plain-hook baseline: the same plan applied with register_forward_(pre_)hook.

Ordinary torch ops on the whole (B, T, D) activation, positions re-derived in every hook.
It is the equivalence oracle of the patched runtime and the baseline of the benchmarks.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .adapters import INPUT_SITES, get_adapter
from .ops.reference import math_dtype
from .plan import Intervention, SteeringPlan
from .positions import CallTracker


def _edit(tracker: CallTracker, iv: Intervention, t: Tensor) -> Tensor:
    sel, offset = tracker.info.select(iv.positions)
    vec = iv.tensor.to(t.device)[offset.clamp(max=iv.entries - 1)]      # (B, T, D)
    a = t.to(math_dtype(t.dtype))
    a = a * (1.0 + iv.strength * vec) if iv.kind == "scale" else a + iv.strength * vec
    return torch.where(sel.unsqueeze(-1), a.to(t.dtype), t)


class HookHandle:
    def __init__(self, handles):
        self._handles = handles

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> "HookHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def apply_hooks(model: nn.Module, plan: SteeringPlan) -> HookHandle:
    adapter = get_adapter(model)
    plan.validate(model)
    base = model.get_submodule(adapter.base)
    tracker = CallTracker(base.forward)

    def begin(mod, args, kwargs):
        tracker.begin(args, kwargs)

    handles = [base.register_forward_pre_hook(begin, with_kwargs=True)]
    for iv in plan.interventions:
        module = adapter.site_module(model, iv.layer, iv.site)
        if iv.site in INPUT_SITES:
            def pre(mod, args, iv=iv):
                return (_edit(tracker, iv, args[0]),) + tuple(args[1:])
            handles.append(module.register_forward_pre_hook(pre))
        else:
            def post(mod, args, out, iv=iv):
                return _edit(tracker, iv, out)
            handles.append(module.register_forward_hook(post))
    return HookHandle(handles)
