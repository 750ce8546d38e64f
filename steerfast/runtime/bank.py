"""SteeringBank: up to S plans resident at once; each batch row names its slot.

Tables are preallocated per (module, side, lane) for all S slots, E entries each. Loading
a plan whose layout fits writes in place; changing a strength or a row's slot never
re-patches and never recompiles. A slot's plan is split into lanes by position policy
(most plans have one), and each lane gets one row map per forward.
"""
from __future__ import annotations

import threading
from typing import Optional

import torch
from torch import Tensor, nn

from ..adapters import INPUT_SITES, get_adapter
from ..errors import SteeringError
from ..plan import SteeringPlan
from ..positions import CallTracker, parse_policy
from .compose import compose, dense_affine
from .rows import POLICY_CODES, row_maps
from .steered import (ModuleTables, SideTables, SteeringState, steered_embedding_forward,
                      steered_linear_forward)

_HANDLE_ATTR = "_steerfast_handle"
DENSE_POLICIES = ("last", "from_prompt_end", "all")


def _lanes(plan: SteeringPlan) -> list[str]:
    return sorted({iv.positions for iv in plan.interventions})


class SteeringBank:
    """Patch `model` once, then load plans into slots and assign slots to batch rows."""

    def __init__(self, model: nn.Module, slots: int = 8):
        if not isinstance(slots, int) or slots < 1:
            raise SteeringError(f"slots must be a positive int, got {slots!r}")
        self.adapter = get_adapter(model)
        if getattr(model, _HANDLE_ATTR, None) is not None:
            raise SteeringError("model is already patched; revert() the live handle first, "
                                "or combine plans with `plan_a + plan_b`")
        self.model = model
        self.slots = slots
        self.plans: list[Optional[SteeringPlan]] = [None] * slots
        self.device = next(model.parameters()).device
        self.state = SteeringState()
        self.lock = threading.RLock()       # serialises generate() calls sharing this bank
        self._saved: list[tuple[nn.Module, object]] = []
        self._tables: dict[int, ModuleTables] = {}
        self._modules: dict[int, nn.Module] = {}
        self._layout = None
        self.entries = 1
        self.lane_code = torch.full((0, slots), -1, dtype=torch.long, device=self.device)
        self.lane_n = torch.zeros((0, slots), dtype=torch.long, device=self.device)
        self._row_slot: Optional[Tensor] = None
        self._uniform = False
        self._uniform_slot = 0
        self.single_plan = False           # set by patch(): one plan on every row
        self.active = True

        base = model.get_submodule(self.adapter.base)
        tracker = CallTracker(base.forward)
        base_forward = base.forward
        bank = self

        def stack_forward(*args, **kwargs):
            info = tracker.begin(args, kwargs)
            # a decode step (one new, real token per row) of a one-plan bank: whole-tensor ops
            bank.state.dense = bank._uniform and info.past > 0 and info.length == 1
            if not bank.state.dense:
                bank.state.maps = row_maps(info, bank._slots_for(info.batch), bank.lane_code,
                                           bank.lane_n, bank.entries)
            return base_forward(*args, **kwargs)

        self._replace_forward(base, stack_forward)
        model.__dict__[_HANDLE_ATTR] = self

    # --- rows -> slots -------------------------------------------------------------------
    def assign(self, row_slots) -> None:
        """Slot per batch row for the following forwards (-1 = unsteered), written in place."""
        t = torch.as_tensor(row_slots, dtype=torch.long).reshape(-1)
        if t.numel() and (t.min() < -1 or t.max() >= self.slots):
            raise SteeringError(f"row slots must be in -1..{self.slots - 1}, got {t.tolist()}")
        if self._row_slot is not None and self._row_slot.shape == t.shape:
            self._row_slot.copy_(t)
        else:
            self._row_slot = t.to(self.device)
        self._uniform = False

    def assign_all(self, slot: int) -> None:
        """Every row of every batch uses `slot`, whatever the batch size."""
        self._check_slot(slot)
        self._uniform_slot = slot
        self._uniform = True
        self._build_dense()

    def _slots_for(self, batch: int) -> Tensor:
        if self._uniform:
            return torch.full((batch,), self._uniform_slot, dtype=torch.long, device=self.device)
        if self._row_slot is None:
            raise SteeringError("no rows assigned: call bank.assign(row_slots) or assign_all(slot)")
        if self._row_slot.shape[0] != batch:
            raise SteeringError(f"bank.assign() gave {self._row_slot.shape[0]} row slots, "
                                f"the batch has {batch} rows")
        return self._row_slot

    # --- slots -> plans ------------------------------------------------------------------
    def _check_slot(self, slot: int) -> None:
        if not isinstance(slot, int) or not 0 <= slot < self.slots:
            raise SteeringError(f"slot must be an int in 0..{self.slots - 1}, got {slot!r}")

    def load(self, slot: int, plan: SteeringPlan) -> None:
        """Put `plan` in `slot`. Validates first: on error the bank is unchanged."""
        self._check_slot(slot)
        if not isinstance(plan, SteeringPlan):
            raise SteeringError(f"load() needs a SteeringPlan, got {type(plan).__name__}")
        plan.validate(self.model)
        with self.lock:
            self.plans[slot] = plan
            self._rebuild()

    def load_all(self, plans: dict) -> None:
        """Several slots at once ({slot: plan or None}), one rebuild."""
        for slot, plan in plans.items():
            self._check_slot(slot)
            if plan is not None:
                plan.validate(self.model)
        with self.lock:
            for slot, plan in plans.items():
                self.plans[slot] = plan
            self._rebuild()

    def unload(self, slot: int) -> None:
        self._check_slot(slot)
        with self.lock:
            self.plans[slot] = None
            self._rebuild()

    def set_strength(self, slot: int, value: float) -> None:
        self._check_slot(slot)
        if self.plans[slot] is None:
            raise SteeringError(f"slot {slot} is empty")
        self.load(slot, self.plans[slot].with_strength(value))

    def _groups(self):
        """(slot, lane, module, side, Affine) for every slot's interventions, grouped."""
        out = []
        for slot, plan in enumerate(self.plans):
            if plan is None:
                continue
            for lane, policy in enumerate(_lanes(plan)):
                groups: dict[tuple, tuple] = {}
                for iv in plan.interventions:
                    if iv.positions == policy:
                        module = self.adapter.site_module(self.model, iv.layer, iv.site)
                        side = "in" if iv.site in INPUT_SITES else "out"
                        groups.setdefault((id(module), side), (module, []))[1].append(iv)
                for (mid, side), (module, ivs) in groups.items():
                    out.append((slot, lane, policy, module, side, compose(ivs)))
        return out

    def _rebuild(self) -> None:
        groups = self._groups()
        lanes = max([len(_lanes(p)) for p in self.plans if p is not None] or [0])
        entries = max([iv.entries for p in self.plans if p is not None for iv in p.interventions] or [1])
        keys: dict[tuple, list] = {}
        for slot, lane, policy, module, side, aff in groups:
            dim = (aff.mask if aff.mask is not None else aff.bias).shape[1]
            flags = keys.setdefault((id(module), side, lane), [module, dim, False, False])
            flags[2] |= aff.mask is not None
            flags[3] |= aff.bias is not None
        signature = (lanes, entries, tuple(sorted((k, v[1], v[2], v[3]) for k, v in keys.items())))
        fresh = signature != self._layout
        if fresh:
            self._allocate(lanes, entries, keys)
            self._layout = signature
        else:
            self._zero()
        self._fill(groups)
        self._build_dense(groups)

    def _build_dense(self, groups=None) -> None:
        """Decode-phase realisations of the uniform slot's plan (DESIGN §7)."""
        for mt in self._tables.values():
            mt.dense_in = mt.dense_out = None
        if not self._uniform or self.plans[self._uniform_slot] is None:
            return
        per_side: dict[tuple, tuple] = {}
        for slot, lane, policy, module, side, aff in groups if groups is not None else self._groups():
            # prefix / prompt_last select no row of a decode step; groups come in lane order
            if slot == self._uniform_slot and parse_policy(policy)[0] in DENSE_POLICIES:
                per_side.setdefault((id(module), side), (module, []))[1].append(aff)
        for (mid, side), (module, parts) in per_side.items():
            dense = dense_affine(parts, self.device)
            if side == "in":
                self._tables[mid].dense_in = dense
            else:
                if dense.scale is None and isinstance(module, nn.Linear):
                    shift = dense.shift.to(module.weight.dtype)
                    dense.linear_bias = shift if module.bias is None else module.bias + shift
                self._tables[mid].dense_out = dense

    def _allocate(self, lanes, entries, keys) -> None:
        self.entries = entries
        self.lane_code = torch.full((lanes, self.slots), -1, dtype=torch.long, device=self.device)
        self.lane_n = torch.zeros((lanes, self.slots), dtype=torch.long, device=self.device)
        rows = self.slots * entries

        def zeros(*shape):
            return torch.zeros(shape, dtype=torch.float32, device=self.device)

        new_tables: dict[int, ModuleTables] = {}
        for (mid, side, lane), (module, dim, scale, add) in keys.items():
            mt = new_tables.setdefault(mid, ModuleTables([None] * lanes, [None] * lanes))
            st = SideTables(zeros(rows, dim) if scale else None, zeros(rows) if scale else None,
                            zeros(rows, dim) if add else None, zeros(rows) if add else None)
            (mt.inputs if side == "in" else mt.outputs)[lane] = st
            self._modules[mid] = module
        for mid, mt in new_tables.items():
            if all(t is None for t in mt.inputs):
                mt.inputs = []
            if all(t is None for t in mt.outputs):
                mt.outputs = []
            if mid in self._tables:          # already patched: swap the tables, keep the forward
                self._tables[mid].inputs, self._tables[mid].outputs = mt.inputs, mt.outputs
            else:
                self._tables[mid] = mt
                self._patch_module(self._modules[mid], mt)
        for mid, mt in self._tables.items():
            if mid not in new_tables:         # nothing loaded steers it any more
                mt.inputs, mt.outputs = [], []

    def _patch_module(self, module: nn.Module, tables: ModuleTables) -> None:
        if isinstance(module, nn.Embedding):
            fn = steered_embedding_forward(module, self.state, tables)
        else:
            fn = steered_linear_forward(module, self.state, tables)
        self._replace_forward(module, fn)

    def _zero(self) -> None:
        self.lane_code.fill_(-1)
        self.lane_n.zero_()
        for mt in self._tables.values():
            for st in mt.inputs + mt.outputs:
                for t in (st.mask, st.delta, st.bias, st.coef) if st is not None else ():
                    if t is not None:
                        t.zero_()

    def _fill(self, groups) -> None:
        for slot, lane, policy, module, side, aff in groups:
            name, n = parse_policy(policy)
            self.lane_code[lane, slot] = POLICY_CODES[name]
            self.lane_n[lane, slot] = n
            mt = self._tables[id(module)]
            st = (mt.inputs if side == "in" else mt.outputs)[lane]
            lo = slot * self.entries
            for dst, src in ((st.mask, aff.mask), (st.delta, aff.delta),
                             (st.bias, aff.bias), (st.coef, aff.coef)):
                if src is not None:
                    dst[lo:lo + src.shape[0]].copy_(src)

    # --- patching ----------------------------------------------------------------------
    def _replace_forward(self, module: nn.Module, fn) -> None:
        self._saved.append((module, module.__dict__.get("forward")))
        module.forward = fn

    def revert(self) -> None:
        """Restore every patched module's forward exactly; idempotent."""
        if not self.active:
            return
        for module, previous in reversed(self._saved):
            if previous is None:
                module.__dict__.pop("forward", None)
            else:
                module.forward = previous
        self._saved.clear()
        self._tables.clear()
        self.state.maps = []
        self.model.__dict__.pop(_HANDLE_ATTR, None)
        self.active = False

    def __enter__(self) -> "SteeringBank":
        return self

    def __exit__(self, *exc) -> None:
        self.revert()


