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

    def refuse_packed(self) -> None:
        """A continuous-batching forward of a bank holding a conditional plan (not built yet:
        the gate would have to persist per request id across packed steps)."""
        raise SteeringError(
            "conditional plans are not supported under continuous batching yet (steerfast "
            "serve / generate_batch): use steerfast.generate, or a plan without a condition"
        )

    def _reader(self, point: ReadPoint):
        def pre(module, args, kwargs):
            if self._masks is None or not self.bank.active:  # not a prefill: the gate is kept
                return None
            h = args[0] if args else kwargs["hidden_states"]
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
