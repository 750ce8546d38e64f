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


def _edit(tracker: CallTracker, iv: Intervention, t: Tensor, add_scale: float) -> Tensor:
    sel, offset = tracker.info.select(iv.positions)
    vec = iv.tensor.to(t.device)[offset.clamp(max=iv.entries - 1)]  # (B, T, D)
    a = t.to(math_dtype(t.dtype))
    if iv.kind == "scale":
        a = a * (1.0 + iv.strength * vec)
    else:
        a = a + (iv.strength * add_scale) * vec
    return torch.where(sel.unsqueeze(-1).to(t.device), a.to(t.dtype), t)


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
    for iv in plan.interventions:
        site = adapter.site(model, iv.layer, iv.site)
        if site.side == "in":

            def pre(mod, args, iv=iv, a=site.add_scale):
                return (_edit(tracker, iv, args[0], a),) + tuple(args[1:])

            handles.append(site.module.register_forward_pre_hook(pre))
            order.append((site.module._forward_pre_hooks, handles[-1].id, True))
        else:

            def post(mod, args, out, iv=iv, a=site.add_scale):
                if isinstance(out, tuple):
                    return (_edit(tracker, iv, out[0], a),) + out[1:]
                return _edit(tracker, iv, out, a)

            handles.append(site.module.register_forward_hook(post))
            order.append((site.module._forward_hooks, handles[-1].id, False))
    model.__dict__["_steerfast_hooks"] = model.__dict__.get("_steerfast_hooks", 0) + 1
    return HookHandle(model, handles)
