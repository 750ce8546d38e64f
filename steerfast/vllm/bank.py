"""The worker's steering tables: one slot per live configuration, one table set per hooked
site and lane, row maps rewritten each step. Persistent tensors, edited in place, so vLLM's
compiled graph (traced once, guards dropped) reads the current values.

Slots: a configuration (spec key) gets a slot when its first request arrives and keeps it
while any request holds it; freed slots are reused least-recently first. With `slots` =
vLLM's max_num_seqs a running request always finds one.
"""

from __future__ import annotations

import torch

from .. import ops
from ..errors import SteeringError
from ..positions import parse_policy
from ..runtime.rows import POLICY_CODES
from . import site_op
from . import sites as vsites
from .gates import Gates
from .layout import Layout


class SiteTables:
    """(lanes, slots*entries, D) tables of one hooked site, this rank's columns."""

    def __init__(self, lanes: int, rows: int, width: int):
        def z(*shape):
            return torch.zeros(shape, dtype=torch.float32)

        self.mask, self.delta = z(lanes, rows, width), z(lanes, rows)
        self.bias, self.coef = z(lanes, rows, width), z(lanes, rows)
        self.dir, self.alpha = z(lanes, rows, width), z(lanes, rows)
        # per lane: how many slots use each part (eager steps skip parts no slot uses)
        self.uses = [[0, 0, 0] for _ in range(lanes)]


class VllmBank:
    _made = 0  # banks built in this process: op keys stay unique and deterministic

    def __init__(self, model, layout: Layout, slots: int, max_tokens: int, host_branch: bool = False):
        """host_branch: compiled graphs call site_op (the host decides per step what runs; no
        CUDA graphs); else every lane's edit is traced in as data (CUDA-graph safe)."""
        self.layout, self.slots, self.entries = layout, slots, layout.entries
        self.host_branch, self.op_keys = host_branch, []
        bank_no, VllmBank._made = VllmBank._made, VllmBank._made + 1
        L = layout.lanes
        self.lane_code = torch.full((L, slots), -1, dtype=torch.long)
        self.lane_n = torch.zeros((L, slots), dtype=torch.long)
        self.rows = torch.full((L, max_tokens), -1, dtype=torch.int32)  # per token: table row
        self.rows_written = 0  # columns [0, rows_written) may be >= 0; the rest are -1
        self.step_active = False  # host flag for eager steps: any steered token this step
        self.slot_key: list[str | None] = [None] * slots
        self.slot_parts: list[list] = [[] for _ in range(slots)]
        self.gated = [False] * slots
        self.refs = [0] * slots
        self.last_used = [0] * slots
        self.clock = 0
        self.slot_of: dict[str, int] = {}  # request id -> slot
        self.prefill_starts: dict[str, int] = {}  # request id -> prefills from position 0
        self.recomputed = 0  # re-prefills after preemption, since start
        self.tables: dict[tuple, SiteTables] = {}
        self.cols: dict[tuple, slice | None] = {}
        self.handles = []
        self.gates = Gates(layout, slots, slots, max_tokens, L) if layout.read_layers else None
        for ls in layout.sites:
            vsite = vsites.resolve(model, layout.model_type, ls[0], ls[1], layout.tp_size)
            width = layout.width[ls]
            if vsite.cols is not None:
                width = vsite.cols.stop - vsite.cols.start
            self.cols[ls] = vsite.cols
            self.tables[ls] = t = SiteTables(L, slots * self.entries, width)
            key = f"bank{bank_no}:{ls[0]}:{ls[1]}"
            self.handles.append(vsites.install(vsite, self._editor(t, key)))
        layers = vsites.decoder_layers(model)
        for layer in layout.read_layers:  # after the site hooks: layer 0 reads after embed.out
            self.handles.append(layers[layer].register_forward_pre_hook(self.gates.reader(layer)))

    # --- the forward ---------------------------------------------------------------------
    def _editor(self, t: SiteTables, key: str):
        rows, lanes, gates = self.rows, range(self.layout.lanes), self.gates

        def edit(y):
            n = y.shape[0]
            if torch.compiler.is_compiling() and self.host_branch:
                torch.ops.steerfast_vllm.edit_(y, key)
                return y
            if torch.compiler.is_compiling():  # traced once: every lane, every part, as data
                for lane in lanes:
                    m = rows[lane, :n] if gates is None else gates.mask(lane, rows[lane, :n])
                    y = ops.steered_ablate(
                        y, m, t.mask[lane], t.delta[lane], t.bias[lane], t.coef[lane],
                        t.dir[lane], t.alpha[lane],
                    )  # fmt: skip
                return y
            if not self.step_active:
                return y
            y = y.contiguous()
            for lane in lanes:
                scale, add, ablate = t.uses[lane]
                if not (scale or add or ablate):
                    continue
                m = rows[lane, :n]
                if gates is not None and gates.active:
                    m = gates.mask(lane, m)
                parts = (
                    t.mask[lane] if scale else None,
                    t.delta[lane] if scale else None,
                    t.bias[lane] if add else None,
                    t.coef[lane] if add else None,
                )
                if ablate:
                    ops.steer_ablate_(y, m, *parts, t.dir[lane], t.alpha[lane])
                else:
                    ops.steer_rows_(y, m, *parts)
            return y

        site_op.register(key, edit)
        self.op_keys.append(key)
        return edit

    # --- configurations -> slots ---------------------------------------------------------
    def acquire(self, request_id: str, key: str, build_plan, prompt_len: int) -> int:
        if key in self.slot_key:
            slot = self.slot_key.index(key)
        else:
            free = [s for s in range(self.slots) if self.refs[s] == 0]
            if not free:
                raise SteeringError(f"all {self.slots} steering slots are held by running requests")
            slot = min(free, key=lambda s: self.last_used[s])
            self._clear(slot)
            self._load(slot, key, build_plan())
        self.refs[slot] += 1
        self.clock += 1
        self.last_used[slot] = self.clock
        self.slot_of[request_id] = slot
        if self.gated[slot]:
            self.gates.admit(request_id, slot, prompt_len)
        return slot

    def release(self, request_id: str) -> None:
        slot = self.slot_of.pop(request_id, None)
        self.prefill_starts.pop(request_id, None)
        if slot is not None:
            self.refs[slot] -= 1
            if self.gates is not None:
                self.gates.release(request_id)

    def _load(self, slot: int, key: str, plan) -> None:
        groups = self.layout.groups(plan)
        lo = slot * self.entries
        if plan.condition is not None:
            self.gates.load(slot, plan.condition, sorted({g[0] for g in groups if g[3].gated}))
            self.gated[slot] = True
        for lane, policy, ls, aff in groups:
            name, n = parse_policy(policy)
            self.lane_code[lane, slot] = POLICY_CODES[name]
            self.lane_n[lane, slot] = n
            t, cols = self.tables[ls], self.cols[ls]
            parts = ((t.mask, aff.mask, 0), (t.bias, aff.bias, 1), (t.dir, aff.dir, 2))
            for dst, src, use in parts:
                if src is not None:
                    src = src if cols is None else src[:, cols]
                    dst[lane, lo : lo + src.shape[0]].copy_(src)
                    t.uses[lane][use] += 1
            for dst, src in ((t.delta, aff.delta), (t.coef, aff.coef), (t.alpha, aff.alpha)):
                if src is not None:
                    dst[lane, lo : lo + src.shape[0]].copy_(src)
            self.slot_parts[slot].append(
                (lane, ls, aff.mask is not None, aff.bias is not None, aff.dir is not None)
            )
        self.slot_key[slot] = key

    def _clear(self, slot: int) -> None:
        lo, hi = slot * self.entries, (slot + 1) * self.entries
        for lane, ls, scale, add, ablate in self.slot_parts[slot]:
            t = self.tables[ls]
            for tensor in (t.mask, t.delta, t.bias, t.coef, t.dir, t.alpha):
                tensor[lane, lo:hi].zero_()
            for use, on in enumerate((scale, add, ablate)):
                t.uses[lane][use] -= int(on)
        self.slot_parts[slot] = []
        self.lane_code[:, slot] = -1
        self.lane_n[:, slot] = 0
        self.slot_key[slot] = None
        if self.gated[slot]:
            self.gates.clear(slot)
            self.gated[slot] = False

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []
        for key in self.op_keys:
            site_op.unregister(key)
        self.op_keys = []
