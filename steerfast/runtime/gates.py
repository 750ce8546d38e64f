"""Per-request gates of conditional plans (steerfast/conditions.py), on the device.

The bank keeps, per slot, a gate expression over condition "atoms" (one per Condition of
the slot's plan), and per (lane, slot) whether that lane's interventions are gated. Per
forward of the decoder stack:

* `begin` (from the bank, after the row maps are built): keeps the ungated maps; in a
  prefill (past 0) the gate starts off for every row, in a later forward it is the gate the
  prefill decided; the gated lanes' maps are masked with it (-1 where the gate is off);
* at each read point (a forward pre-hook on the decoder layer a condition reads), during a
  prefill only: every atom read there is scored on the prompt's tokens of each row,
  `c · agg(h)` against its threshold; the row's gate is its slot's expression over the atoms
  known so far, and the gated maps are re-masked. Gated interventions come after their
  gate's last read point (checked by the plan), so they see the final gate.

Everything is tensor ops (no .item(), no branch on values); the gate tensor persists on the
bank between forwards, so decode steps (Dynamic or Static cache) reuse it unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import SteeringError


def atom_scores(h: Tensor, vecs: Tensor, prompt: Tensor, last: Tensor, use_last: Tensor) -> Tensor:
    """(B, K) score of K atoms: c_k · mean of h over `prompt` tokens, or at the `last` token.

    h (B, T, D); vecs (K, D) fp32 unit vectors; prompt, last (B, T) bool; use_last (K,) bool.
    """
    proj = h.to(torch.float32) @ vecs.t()  # (B, T, K)
    w = prompt.to(proj.dtype).unsqueeze(-1)
    mean = (proj * w).sum(1) / w.sum(1).clamp(min=1.0)
    at_last = (proj * last.to(proj.dtype).unsqueeze(-1)).sum(1)
    return torch.where(use_last, at_last, mean)


def decide(scores: Tensor, threshold: Tensor, greater: Tensor) -> Tensor:
    return torch.where(greater, scores > threshold, scores < threshold)


def combine(atoms: Tensor, slot: Tensor, a_idx: Tensor, b_idx: Tensor, is_or: Tensor) -> Tensor:
    """(B,) gate of each row from its slot's expression; False where the slot has none."""
    batch = torch.arange(atoms.shape[0], device=atoms.device)
    ia, ib = a_idx[slot], b_idx[slot]
    a = atoms[batch, ia.clamp(min=0)]
    b = atoms[batch, ib.clamp(min=0)]
    two = torch.where(is_or[slot], a | b, a & b)
    return torch.where(ib >= 0, two, a) & (ia >= 0)


def gate_maps(
    maps: list[Tensor], lane_gated: Tensor, slot: Tensor, gate: Tensor, per_row: int
) -> list[Tensor]:
    """Maps with gated lanes set to -1 on rows whose gate is off (every token of the row)."""
    out = []
    for lane, m in enumerate(maps):
        off = (lane_gated[lane][slot] & ~gate).repeat_interleave(per_row)
        out.append(torch.where(off, -1, m))
    return out


def _kept_atoms(new_ids: list, old_ids: list) -> list[tuple[int, int]]:
    """(new column, old column) of the atoms that are the same condition of the same slot."""

    def same(a, b) -> bool:
        return a is b or (a.header() == b.header() and torch.equal(a.vector, b.vector))

    old = {(slot, k): (col, c) for col, (slot, k, c) in enumerate(old_ids)}
    kept = []
    for col, (slot, k, c) in enumerate(new_ids):
        hit = old.get((slot, k))
        if hit is not None and same(c, hit[1]):
            kept.append((col, hit[0]))
    return kept


class ReadPoint:
    """The atoms read at one decoder layer's input: stacked tables on the device."""

    def __init__(self, layer: int, atoms: list, index: list[int], n_atoms: int, device):
        self.layer = layer
        self.index = torch.tensor(index, dtype=torch.long, device=device)
        self.vecs = torch.stack([c.vector for c in atoms]).to(device)
        self.threshold = torch.tensor([c.threshold for c in atoms], dtype=torch.float32, device=device)
        self.greater = torch.tensor([c.comparator == ">" for c in atoms], device=device)
        self.use_last = torch.tensor([c.aggregate == "last" for c in atoms], device=device)
        self.cols = torch.zeros(n_atoms, dtype=torch.bool, device=device)
        self.cols[self.index] = True


class PackedStore:
    """Per-request gate state of continuous batching, one row per live request (row 0 is the
    padding sentinel's scratch row): running sums of the prompt's projections per atom,
    prompt-token counts, the atoms, the gate, whether it is decided, the request's slot."""

    def __init__(self, n_atoms: int, device, capacity: int = 16):
        self.n_atoms, self.device, self.capacity = n_atoms, device, capacity
        self.row_of: dict[str, int] = {}
        self.stamp: dict[str, float | None] = {}
        self.free = list(range(1, capacity))
        self.acc = torch.zeros(capacity, n_atoms, device=device)
        self.cnt = torch.zeros(capacity, n_atoms, device=device)
        self.atoms = torch.zeros(capacity, n_atoms, dtype=torch.bool, device=device)
        self.gate = torch.zeros(capacity, dtype=torch.bool, device=device)
        self.decided = torch.zeros(capacity, dtype=torch.bool, device=device)
        self.slot = torch.zeros(capacity, dtype=torch.long, device=device)
        self.started = 0  # gate states started afresh (one per request)
        self.resumed = 0  # re-queued requests (soft reset after eviction) that kept theirs

    def _grow(self) -> None:
        old = self.capacity
        self.capacity *= 2
        for name in ("acc", "cnt", "atoms", "gate", "decided", "slot"):
            t = getattr(self, name)
            setattr(self, name, torch.cat([t, torch.zeros_like(t)]))
        self.free += list(range(old, self.capacity))

    def resize(self, n_atoms: int, kept: list[tuple[int, int]] = ()) -> None:
        """A new atom layout: decided gates stay; the partial prompt sums of the atoms in
        `kept` ((new column, old column): the same condition of the same slot) move to their
        new column, so a request in mid-prefill keeps what it read; the others start at 0."""
        acc = torch.zeros(self.capacity, n_atoms, device=self.device)
        cnt = torch.zeros_like(acc)
        atoms = torch.zeros(self.capacity, n_atoms, dtype=torch.bool, device=self.device)
        if kept:
            new = torch.tensor([n for n, _ in kept], dtype=torch.long, device=self.device)
            old = torch.tensor([o for _, o in kept], dtype=torch.long, device=self.device)
            acc[:, new], cnt[:, new], atoms[:, new] = self.acc[:, old], self.cnt[:, old], self.atoms[:, old]
        self.n_atoms, self.acc, self.cnt, self.atoms = n_atoms, acc, cnt, atoms

    def rows_for(self, requests) -> list[int]:
        """Storage rows of a step's requests: (key, stamp[, resumed]) each (packed.request_identity).

        A key not seen yet, or seen with another stamp (a new request reusing the id), starts
        afresh; a resumed one (re-queued after eviction, a new stamp) keeps its row and so its
        decided gate. `started` / `resumed` count both, for tests and metrics (host ints).
        """
        rows, fresh = [], []
        for req in requests:
            key, stamp = req[0], req[1]
            resumed = len(req) > 2 and req[2]
            row = self.row_of.get(key)
            old = self.stamp.get(key)
            if row is not None and stamp is not None and old not in (None, stamp) and resumed:
                self.resumed += 1  # the same request re-queued: keep its gate (or its restart)
            elif row is None or (stamp is not None and old not in (None, stamp)):
                if row is None:
                    if not self.free:
                        self._grow()
                    row = self.free.pop(0)
                self.row_of[key] = row
                fresh.append(row)
                self.started += 1
            if stamp is not None:
                self.stamp[key] = stamp
            rows.append(row)
        if fresh:  # a new request (or a new one reusing an id): nothing decided yet
            idx = torch.tensor(fresh, dtype=torch.long).to(self.device)
            for name in ("acc", "cnt", "atoms", "gate", "decided"):
                setattr(self, name, getattr(self, name).index_fill(0, idx, 0))
        return rows

    def restart(self, rows: Tensor) -> None:
        """Forget the partial prompt sums of `rows` (M,) bool, whose prompt starts over at
        position 0 while their gate is still undecided (a request evicted in mid-prefill)."""
        r = rows.unsqueeze(1)
        self.acc = torch.where(r, 0.0, self.acc)
        self.cnt = torch.where(r, 0.0, self.cnt)
        self.atoms = self.atoms & ~r

    def release(self, key: str) -> None:
        row = self.row_of.pop(key, None)
        self.stamp.pop(key, None)
        if row is not None:
            self.free.append(row)


class BankGates:
    """The gate state of one SteeringBank (active only while a loaded plan has a condition)."""

    def __init__(self, bank):
        self.bank = bank
        self.active = False
        self.points: list[ReadPoint] = []
        self._hooks: list = []
        self.gate: Tensor | None = None  # (B,) bool, decided in the last prefill
        self._atoms: Tensor | None = None
        self._base: list[Tensor] = []
        self._slot: Tensor | None = None
        self._masks = None
        self._per_row = 1
        self._packed = None  # this step's per-token tables in a continuous-batching step
        self._store: PackedStore | None = None
        self._atom_ids: list = []  # (slot, index in its gate, Condition) per atom column

    # --- tables, from the bank's plans ---------------------------------------------------
    def rebuild(self, plans, groups, lanes: int) -> None:
        self.remove()
        dev = self.bank.device
        S = len(plans)
        atoms, a_idx, b_idx, is_or = [], [-1] * S, [-1] * S, [False] * S
        for slot, plan in enumerate(plans):
            gate = None if plan is None else plan.condition
            if gate is None:
                continue
            ids = []
            for c in gate.conditions:
                ids.append(len(atoms))
                atoms.append(c)
            a_idx[slot] = ids[0]
            b_idx[slot] = ids[1] if len(ids) > 1 else -1
            is_or[slot] = gate.op == "or"
        self.active = bool(atoms)
        self.gate = None
        if not self.active:
            self.points = []
            return
        self.n_atoms = len(atoms)
        self.a_idx = torch.tensor(a_idx, dtype=torch.long, device=dev)
        self.b_idx = torch.tensor(b_idx, dtype=torch.long, device=dev)
        self.is_or = torch.tensor(is_or, device=dev)
        self.lane_gated = torch.zeros((max(lanes, 1), S), dtype=torch.bool, device=dev)
        for slot, lane, _policy, _module, _side, aff in groups:
            if getattr(aff, "gated", False):
                self.lane_gated[lane, slot] = True
        by_layer: dict[int, list[int]] = {}
        for k, c in enumerate(atoms):
            by_layer.setdefault(c.layer, []).append(k)
        atom_ids = [  # the same order as `atoms`
            (slot, k, c)
            for slot, plan in enumerate(plans)
            if plan is not None and plan.condition is not None
            for k, c in enumerate(plan.condition.conditions)
        ]
        if self._store is None:
            self._store = PackedStore(len(atoms), dev)
        else:  # requests in flight keep their decided gates (and partial sums) across loads
            self._store.resize(len(atoms), _kept_atoms(atom_ids, self._atom_ids))
        self._atom_ids = atom_ids
        self.points = [
            ReadPoint(layer, [atoms[k] for k in ks], ks, len(atoms), dev)
            for layer, ks in sorted(by_layer.items())
        ]
        layers = self.bank.adapter.layer_modules(self.bank.model)
        for p in self.points:
            self._hooks.append(layers[p.layer].register_forward_pre_hook(self._reader(p), with_kwargs=True))

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []

    # --- per forward ---------------------------------------------------------------------
    def begin(self, info, slot: Tensor, maps: list[Tensor]) -> list[Tensor]:
        """Row maps of this forward with the gate applied (the prefill starts with it off)."""
        self._packed = None
        self._slot = slot.clamp(min=0)
        self._base = maps
        self._per_row = info.length
        B = info.batch
        if info.past == 0:
            self._masks = info.masks()
            self._atoms = torch.zeros((B, self.n_atoms), dtype=torch.bool, device=slot.device)
            self.gate = torch.zeros(B, dtype=torch.bool, device=slot.device)
        else:
            self._masks = None
            if self.gate is None or self.gate.shape[0] != B:
                raise SteeringError(
                    "a conditional plan's forward continues a request whose prompt this bank did "
                    "not see (no gate for a batch of "
                    f"{B} rows); run the prompt (past 0) through the patched model first"
                )
        return gate_maps(maps, self.lane_gated, self._slot, self.gate, self._per_row)

    # --- continuous batching: the engine's packed (1, N) steps -----------------------------
    def packed_step(
        self,
        cu_seq_lens_q: Tensor,
        position_ids: Tensor,
        n_tokens: int,
        requests: list[tuple],
        seq_slot: Tensor,
        seq_prompt_len: Tensor,
        maps: list[Tensor],
    ) -> list[Tensor]:
        """The row maps of one packed step with every request's gate applied.

        What a continuous-batching engine calls once per step, after packed_row_maps (the
        PackedRows of runtime/packed.py does): requests = (key, stamp, resumed) per packed
        request in order (packed.request_identity); seq_slot / seq_prompt_len as for packed_row_maps.
        A request's gate is accumulated over its prompt tokens (chunked prefill included) at
        the read points and decided in the step holding its prompt's last token; every later
        step (decode, or a re-prefill after eviction) reuses it; a request evicted before its
        gate was decided restarts its sums when its prompt comes back from position 0. Call
        release(key) when a request ends.
        """
        from .packed import packed_masks

        store = self._store
        rows = store.rows_for(requests)
        dev = position_ids.device
        R = len(requests)
        seq, m = packed_masks(cu_seq_lens_q, position_ids, R, n_tokens, seq_prompt_len)
        req_row = torch.tensor(rows + [0], dtype=torch.long).to(dev)
        tok_row = req_row[seq]
        slot = seq_slot.to(dev)
        store.slot = store.slot.index_copy(0, req_row[:R], slot[:R].clamp(min=0))
        was = store.decided[tok_row]
        # an undecided prompt seen again from position 0 (evicted in mid-prefill, re-queued)
        # restarts its sums; a decided gate is kept whatever is re-prefilled
        again = m["prefix"] & (m["real_pos"] == 0) & ~was
        store.restart(torch.zeros(store.capacity, device=dev).index_add_(0, tok_row, again.float()) > 0)
        fin = (
            torch.zeros(store.capacity, device=dev).index_add_(0, tok_row, (m["prompt_last"] & ~was).float())
            > 0
        )
        store.decided = store.decided | fin
        self._packed = (tok_row, slot[seq].clamp(min=0), m["prefix"] & ~was, m["prompt_last"] & ~was, fin)
        self._base = maps
        self._masks = None  # the read hooks take the packed branch
        return gate_maps(maps, self.lane_gated, self._packed[1], store.gate[tok_row], 1)

    def release(self, key: str) -> None:
        """Forget a finished request's gate (its storage row is reused); a no-op without one."""
        if self._store is not None:
            self._store.release(key)

    def _read_packed(self, point: ReadPoint, h: Tensor) -> None:
        store = self._store
        tok_row, slot_tok, prompt, last, fin = self._packed
        proj = h.reshape(-1, h.shape[-1])[: tok_row.shape[0]].to(torch.float32) @ point.vecs.t()  # (N, Kp)
        M = store.capacity
        w, lw = prompt.to(proj.dtype).unsqueeze(1), last.to(proj.dtype).unsqueeze(1)
        add_mean = torch.zeros(M, proj.shape[1], device=proj.device).index_add_(0, tok_row, proj * w)
        add_last = torch.zeros_like(add_mean).index_add_(0, tok_row, proj * lw)
        add_cnt = torch.zeros(M, device=proj.device).index_add_(0, tok_row, prompt.to(proj.dtype))
        full = torch.zeros_like(store.acc)
        full[:, point.index] = torch.where(point.use_last, add_last, add_mean)
        store.acc = store.acc + full
        cnt = torch.zeros_like(store.cnt)
        cnt[:, point.index] = add_cnt.unsqueeze(1).expand(-1, point.index.shape[0])
        store.cnt = store.cnt + cnt
        acc = store.acc[:, point.index]
        score = torch.where(point.use_last, acc, acc / store.cnt[:, point.index].clamp(min=1.0))
        on = torch.zeros_like(store.atoms)
        on[:, point.index] = decide(score, point.threshold, point.greater)
        store.atoms = torch.where(point.cols & fin.unsqueeze(1), on, store.atoms)
        gate = combine(store.atoms, store.slot, self.a_idx, self.b_idx, self.is_or)
        store.gate = torch.where(fin, gate, store.gate)
        self.bank.state.set_maps(gate_maps(self._base, self.lane_gated, slot_tok, store.gate[tok_row], 1))

    def _reader(self, point: ReadPoint):
        def pre(module, args, kwargs):
            if not self.bank.active:
                return None
            h = args[0] if args else kwargs["hidden_states"]
            if self._packed is not None:
                self._read_packed(point, h)
                return None
            if self._masks is None:  # not a prefill: the gate is kept
                return None
            on = decide(
                atom_scores(h, point.vecs, self._masks["prefix"], self._masks["prompt_last"], point.use_last),
                point.threshold,
                point.greater,
            )
            full = torch.zeros_like(self._atoms)
            full[:, point.index] = on
            self._atoms = torch.where(point.cols, full, self._atoms)
            self.gate = combine(self._atoms, self._slot, self.a_idx, self.b_idx, self.is_or)
            state = self.bank.state
            state.set_maps(gate_maps(self._base, self.lane_gated, self._slot, self.gate, self._per_row))
            return None

        return pre


__all__ = ["BankGates", "atom_scores", "decide", "combine", "gate_maps"]
