"""SteeringBank: up to S plans resident at once; each batch row names its slot.

Tables are preallocated per (module, side, lane) for all S slots, E entries each. Loading
a plan whose layout fits writes in place; changing a strength or a row's slot never
re-patches and never recompiles. A slot's interventions are split into lanes (one row map
each per forward) so that every module side applies them in plan order: most plans have one.

Every forward of the decoder stack holds the bank's lock, and so does every change of the
tables: a forward sees one consistent set of tables.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..adapters import execution_device, get_adapter
from ..errors import SteeringError
from ..plan import SteeringPlan
from ..positions import CallTracker
from .bank_tables import allocate_tables, fill_tables, table_layout, zero_tables
from .decode import decode_key, row_affines, slot_affines
from .gates import BankGates
from .lanes import slot_groups
from .rows import row_maps
from .steered import (
    ModuleTables,
    SteeringState,
    fast_linear_forward,
    fast_path_ok,
)
from .wrapped import wrapped_post_hook, wrapped_pre_hook

_HANDLE_ATTR = "_steerfast_handle"


def _normal_tensors(method):
    """Tensors the bank keeps and edits in place later are made outside inference mode: an
    inference tensor (a bank built or loaded under torch.inference_mode) cannot be updated,
    nor saved for backward, once the mode is left."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with torch.inference_mode(False):
            return method(*args, **kwargs)

    return wrapper


class SteeringBank:
    """Patch `model` once, then load plans into slots and assign slots to batch rows."""

    @_normal_tensors
    def __init__(self, model: nn.Module, slots: int = 8):
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
            raise SteeringError(f"slots must be a positive int, got {slots!r}")
        self.adapter = get_adapter(model)
        if getattr(model, _HANDLE_ATTR, None) is not None:
            raise SteeringError(
                "model is already patched; revert() the live handle first, "
                "or combine plans with `plan_a + plan_b`"
            )
        if getattr(model, "_steerfast_hooks", None):
            raise SteeringError("model has steerfast.apply_hooks installed; remove() them first")
        self.model = model
        self.slots = slots
        self.plans: list[SteeringPlan | None] = [None] * slots
        self.device = execution_device(model)
        self.state = SteeringState()
        self.gates = BankGates(self)  # conditional plans' per-request gates (runtime/gates.py)
        self.lock = threading.RLock()
        self.version = 0
        self.packed_rows: Callable[[tuple, dict], list[Tensor] | None] | None = None
        self._saved: list[tuple[nn.Module, object, object]] = []
        self._handles: list = []
        self._hook_order: list[tuple[dict, int, bool]] = []  # (module's hook dict, id, goes last)
        self._tables: dict[int, ModuleTables] = {}
        self._modules: dict[int, nn.Module] = {}
        self._layout = None
        self.entries = 1
        self.lane_code = torch.full((0, slots), -1, dtype=torch.long, device=self.device)
        self.lane_n = torch.zeros((0, slots), dtype=torch.long, device=self.device)
        self._row_slot: Tensor | None = None
        self._row_host: tuple[int, ...] | None = None  # the same, on the host (decode tables)
        self._per_slot: dict = {}  # slot -> decode-step Dense per (module id, side)
        self._decode_key = None  # what the module tables' dense_in / dense_out hold now
        self._uniform = False
        self._uniform_slot = 0
        self.single_plan = False  # set by patch(): one plan on every row
        self.active = True

        base = model.get_submodule(self.adapter.base)
        tracker = CallTracker(base.forward)
        base_forward = base.forward
        bank = self

        def stack_forward(*args, **kwargs):
            if not bank.active:  # reverted under a wrapper installed after us
                return base_forward(*args, **kwargs)
            if torch.compiler.is_compiling():
                return bank._forward(tracker, base_forward, args, kwargs)
            with bank.lock:
                for hooks, hid, last in bank._hook_order:
                    if hid in hooks:
                        hooks.move_to_end(hid, last=last)
                return bank._forward(tracker, base_forward, args, kwargs)

        self._replace_forward(base, stack_forward)
        model.__dict__[_HANDLE_ATTR] = self
        # pickle looks __reduce_ex__ up on the instance first: a clear error instead of a raw
        # AttributeError from the patched modules' local forwards
        model.__dict__["__reduce_ex__"] = self._refuse_pickle

    def _forward(self, tracker, base_forward, args, kwargs):
        if self.packed_rows is None and "cu_seq_lens_q" in kwargs:
            from .packed import PackedRows  # continuous batching; patch(): slot 0 for every request

            self.packed_rows = PackedRows(self)
        packed = self.packed_rows(args, kwargs) if self.packed_rows is not None else None
        if packed is not None:
            self.state.dense = False
            self.state.set_maps(packed)
            return base_forward(*args, **kwargs)
        info = tracker.begin(args, kwargs)
        # a decode step (one new token per row): whole-tensor ops per row (runtime/decode.py);
        # under torch.compile only for one slot on every row (distinct rows take the row maps,
        # whose tensors do not change with the assignment: no recompile on assign())
        key = None
        decode = info.length == 1 and info.past >= max(tracker.prompt_tokens, 1)
        decode = decode and not self.gates.active  # a gate is per row: the row maps carry it
        if decode and (self._uniform or not torch.compiler.is_compiling()):
            rows = None if self._row_slot is None else self._row_host
            key = decode_key(self._uniform, self._uniform_slot, rows, info.batch)
        self.state.dense = key is not None
        if key is not None:
            self._use_decode(key)
        else:
            dev = info.mask.device
            slots = self._slots_for(info.batch, dev)
            maps = row_maps(info, slots, self.lane_code.to(dev), self.lane_n.to(dev), self.entries)
            if self.gates.active:
                maps = self.gates.begin(info, slots, maps)
            self.state.set_maps(maps)
        return base_forward(*args, **kwargs)

    # --- rows -> slots -------------------------------------------------------------------
    @_normal_tensors
    def assign(self, row_slots) -> None:
        """Slot per batch row for the following forwards (-1 = unsteered), copied in place."""
        try:
            t = torch.as_tensor(row_slots)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise SteeringError(f"row slots must be a 1-D list of ints, got {row_slots!r:.80}") from exc
        if t.dtype == torch.bool or t.is_floating_point() or t.is_complex() or t.dim() > 1:
            raise SteeringError(f"row slots must be a 1-D list of ints, got {row_slots!r}")
        t = t.to(torch.long).reshape(-1)
        if t.numel() and (t.min() < -1 or t.max() >= self.slots):
            raise SteeringError(f"row slots must be in -1..{self.slots - 1}, got {t.tolist()}")
        with self.lock:
            if self._row_slot is not None and self._row_slot.shape == t.shape:
                self._row_slot.copy_(t)
            else:
                self._row_slot = t.to(self.device, copy=True)
            self._row_host = tuple(t.tolist())
            self._uniform = False

    @_normal_tensors
    def assign_all(self, slot: int) -> None:
        """Every row of every batch uses `slot`, whatever the batch size."""
        self._check_slot(slot)
        with self.lock:
            self._uniform_slot = slot
            self._uniform = True
            self._use_decode(("slot", slot))

    def _slots_for(self, batch: int, device) -> Tensor:
        if self._uniform:
            return torch.full((batch,), self._uniform_slot, dtype=torch.long, device=device)
        if self._row_slot is None:
            self._row_host = None
            raise SteeringError("no rows assigned: call bank.assign(row_slots) or assign_all(slot)")
        if self._row_slot.shape[0] != batch:
            raise SteeringError(
                f"bank.assign() gave {self._row_slot.shape[0]} row slots, the batch has {batch} rows"
            )
        return self._row_slot.to(device)

    # --- slots -> plans ------------------------------------------------------------------
    def _check_slot(self, slot: int) -> None:
        if isinstance(slot, bool) or not isinstance(slot, int) or not 0 <= slot < self.slots:
            raise SteeringError(f"slot must be an int in 0..{self.slots - 1}, got {slot!r}")

    def _check_live(self) -> None:
        if not self.active:
            raise SteeringError("this bank was reverted; make a new one")

    def load(self, slot: int, plan: SteeringPlan) -> None:
        """Put `plan` in `slot`. Validates first: on error the bank is unchanged."""
        self._check_slot(slot)  # before the dict below: an unhashable slot is a user's mistake too
        if plan is None:
            raise SteeringError(
                f"load({slot!r}, None): a slot takes a SteeringPlan; empty it with unload(slot)"
            )
        self.load_all({slot: plan})

    def load_all(self, plans: dict) -> None:
        """Several slots at once ({slot: plan or None}), one rebuild; all or nothing."""
        if not isinstance(plans, dict):
            raise SteeringError(f"load_all() needs a dict {{slot: plan or None}}, got {type(plans).__name__}")
        self._check_live()
        for slot, plan in plans.items():
            self._check_slot(slot)
            if plan is not None:
                if not isinstance(plan, SteeringPlan):
                    raise SteeringError(f"load() needs a SteeringPlan, got {type(plan).__name__}")
                plan.validate(self.model)
        with self.lock:
            before = list(self.plans)
            for slot, plan in plans.items():
                self.plans[slot] = plan
            try:
                self._rebuild()
            except BaseException:
                self.plans = before
                self._layout = None
                self._rebuild()
                raise

    def unload(self, slot: int) -> None:
        self._check_slot(slot)
        self.load_all({slot: None})

    def set_strength(self, slot: int, value: float) -> None:
        self._check_slot(slot)
        with self.lock:
            if self.plans[slot] is None:
                raise SteeringError(f"slot {slot} is empty")
            self.load(slot, self.plans[slot].with_strength(value))

    @_normal_tensors
    def _rebuild(self) -> None:
        groups = slot_groups(self.adapter, self.model, self.plans)
        lanes, entries, keys = table_layout(groups, self.plans)
        signature = (lanes, entries, tuple(sorted((k, *v[1:]) for k, v in keys.items())))
        if signature != self._layout:
            self._allocate(lanes, entries, keys)
            self._layout = signature
        else:
            self._zero()
        self._fill(groups)
        self.gates.rebuild(self.plans, groups, lanes)
        self._per_slot = slot_affines(groups, self.device)
        self._decode_key = None
        if self._uniform:
            self._use_decode(("slot", self._uniform_slot))
        self.version += 1
        for mt in self._tables.values():
            mt.cache.clear()

    def _use_decode(self, key) -> None:
        """Point every module's dense_in / dense_out at the decode realisation of `key`."""
        if key == self._decode_key:
            return
        if key[0] == "slot":
            dense = self._per_slot.get(key[1], {})
        else:
            with torch.inference_mode(False):  # see _normal_tensors
                dense = row_affines(self._per_slot, key[1])
        for mid, mt in self._tables.items():
            mt.dense_in = dense.get((mid, "in"))
            mt.dense_out = dense.get((mid, "out"))
            mt.cache.clear()
        self._decode_key = key

    def _allocate(self, lanes, entries, keys) -> None:
        self.entries = entries
        self.lane_code = torch.full((lanes, self.slots), -1, dtype=torch.long, device=self.device)
        self.lane_n = torch.zeros((lanes, self.slots), dtype=torch.long, device=self.device)
        new_tables = allocate_tables(keys, lanes, self.slots * entries, self.device)
        for (mid, _side, _lane), (module, *_flags) in keys.items():
            self._modules[mid] = module
        for mid, mt in new_tables.items():
            if all(t is None for t in mt.inputs):
                mt.inputs = []
            if all(t is None for t in mt.outputs):
                mt.outputs = []
            if mid in self._tables:  # already patched: swap the tables, keep the forward
                self._tables[mid].inputs, self._tables[mid].outputs = mt.inputs, mt.outputs
            else:
                self._tables[mid] = mt
                self._patch_module(self._modules[mid], mt)
        for mid, mt in self._tables.items():
            if mid not in new_tables:  # nothing loaded steers it any more
                mt.inputs, mt.outputs = [], []

    def _patch_module(self, module: nn.Module, tables: ModuleTables) -> None:
        if fast_path_ok(module):
            tables.realisation = "fast"
            self._replace_forward(module, fast_linear_forward(module, self.state, tables))
        else:
            tables.realisation = "wrapped"
            # docs/architecture.md, User hooks: the edit is part of the module's forward, so it
            # runs after the user's pre-hooks and before their forward hooks (kept so per call)
            pre = module.register_forward_pre_hook(wrapped_pre_hook(self.state, tables), with_kwargs=True)
            post = module.register_forward_hook(wrapped_post_hook(self.state, tables), prepend=True)
            self._handles += [pre, post]
            self._hook_order += [
                (module._forward_pre_hooks, pre.id, True),
                (module._forward_hooks, post.id, False),
            ]

    def _zero(self) -> None:
        self.lane_code.fill_(-1)
        self.lane_n.zero_()
        zero_tables(self._tables)

    def _fill(self, groups) -> None:
        fill_tables(self._tables, groups, self.entries, self.lane_code, self.lane_n)

    # --- what each module runs -------------------------------------------------------------
    def describe(self) -> list[dict]:
        """One row per patched module: its path, realisation ('fast' or 'wrapped') and sides."""
        names = {id(m): n for n, m in self.model.named_modules()}
        return [
            {
                "module": names.get(mid, "?"),
                "realisation": mt.realisation,
                "inputs": sum(t is not None for t in mt.inputs),
                "outputs": sum(t is not None for t in mt.outputs),
            }
            for mid, mt in self._tables.items()
        ]

    # --- patching ----------------------------------------------------------------------
    def _replace_forward(self, module: nn.Module, fn) -> None:
        self._saved.append((module, module.__dict__.get("forward"), fn))
        module.forward = fn

    def revert(self) -> None:
        """Restore every patched module exactly; idempotent.

        A forward someone installed over ours after patching stays in place (ours, under
        it, then passes straight through to the original).
        """
        if not self.active:
            return
        with self.lock:
            for mt in self._tables.values():
                mt.live = False
            for h in self._handles:
                h.remove()
            self.gates.remove()
            for module, previous, ours in reversed(self._saved):
                if module.__dict__.get("forward") is not ours:
                    continue
                if previous is None:
                    module.__dict__.pop("forward", None)
                else:
                    module.forward = previous
            self._handles.clear()
            self._hook_order.clear()
            self._saved.clear()
            self._tables.clear()
            self.state.set_maps([])
            self.model.__dict__.pop(_HANDLE_ATTR, None)
            self.model.__dict__.pop("__reduce_ex__", None)
            self.active = False

    def __deepcopy__(self, memo):
        raise SteeringError("a patched model cannot be copied: revert() it first, copy, then patch each copy")

    def _refuse_pickle(self, protocol=None):
        self.__reduce__()

    def __reduce__(self):
        raise SteeringError(
            "a patched model cannot be pickled or saved whole: revert() it first "
            "(save the plan with plan.save())"
        )

    def __enter__(self) -> SteeringBank:
        return self

    def __exit__(self, *exc) -> None:
        self.revert()
