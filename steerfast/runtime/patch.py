"""patch(model, plan) -> PatchHandle: steer a HF model in place; handle.revert() undoes it."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..adapters import get_adapter
from ..errors import SteeringError
from ..plan import SteeringPlan
from ..positions import CallTracker
from .steered import SteeringState, steered_embedding_forward, steered_linear_forward
from .tables import Application, ModuleTables

_HANDLE_ATTR = "_steerfast_handle"


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


class PatchHandle:
    """A live patch. Use as a context manager, or call revert() exactly once."""

    def __init__(self, model: nn.Module, plan: SteeringPlan):
        self.model = model
        self.plan = plan
        self._saved: list[tuple[nn.Module, Optional[object]]] = []
        self.state = SteeringState()
        self.applications: list[Application] = []
        self.active = False

    # strengths live in device tensors: changing one is an in-place write, no re-patching
    def set_strength(self, value: float, index: Optional[int] = None) -> None:
        apps = self.applications if index is None else [self.applications[index]]
        for app in apps:
            app.strength.fill_(float(value))

    def _replace_forward(self, module: nn.Module, fn) -> None:
        self._saved.append((module, module.__dict__.get("forward")))
        module.forward = fn

    def revert(self) -> None:
        if not self.active:
            return
        for module, previous in reversed(self._saved):
            if previous is None:
                module.__dict__.pop("forward", None)
            else:
                module.forward = previous
        self._saved.clear()
        self.state.slots.clear()
        self.model.__dict__.pop(_HANDLE_ATTR, None)
        self.active = False

    def __enter__(self) -> "PatchHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.revert()


def patch(model: nn.Module, plan: SteeringPlan) -> PatchHandle:
    """Apply `plan` to `model` in place. Validates everything first: on error nothing is patched."""
    if not isinstance(plan, SteeringPlan):
        raise SteeringError(f"patch() needs a SteeringPlan, got {type(plan).__name__}")
    adapter = get_adapter(model)
    plan.validate(model)
    if getattr(model, _HANDLE_ATTR, None) is not None:
        raise SteeringError("model is already patched; revert() the live handle first, "
                            "or combine plans with `plan_a + plan_b`")
    device = _device_of(model)
    handle = PatchHandle(model, plan)
    per_module: dict[int, tuple[nn.Module, ModuleTables]] = {}
    for iv in plan.interventions:
        module = adapter.site_module(model, iv.layer, iv.site)
        app = Application.from_intervention(iv, device)
        handle.applications.append(app)
        per_module.setdefault(id(module), (module, ModuleTables()))[1].add(iv, app)

    state = handle.state
    base = model.get_submodule(adapter.base)
    tracker = CallTracker(base.forward)
    policies = sorted({iv.positions for iv in plan.interventions})
    base_forward = base.forward

    def stack_forward(*args, **kwargs):
        info = tracker.begin(args, kwargs)
        state.slots = {p: info.row_entries(p) for p in policies}
        return base_forward(*args, **kwargs)

    handle._replace_forward(base, stack_forward)
    for module, tables in per_module.values():
        if isinstance(module, nn.Embedding):
            fn = steered_embedding_forward(module, state, tables)
        else:
            fn = steered_linear_forward(module, state, tables)
        handle._replace_forward(module, fn)
    model.__dict__[_HANDLE_ATTR] = handle
    handle.active = True
    return handle
