"""Conditional plans inside vLLM: each request's gate, decided from its own prompt, in the
forward, as tensor data (no host sync, nothing frozen by the compiled graph).

A request whose configuration has a gate gets a gate row r. A pre-hook on every read layer
(the layers conditions read: the residual stream entering them, hidden + residual in vLLM)
adds c·h of the request's prompt tokens into sums[r] ("mean") and of its prompt's last token
into last[r] ("last"), then re-decides every row's gate (runtime/gates.py's decide and
combine). A chunked prompt accumulates over steps; a request re-prefilled from position 0
(preemption) has its sums zeroed by the host first. Gated lanes' row maps are masked by the
gate where the edit is applied, so a gate decided at the prompt's end in this forward
already holds for that token, and for every later token of the request.
"""

from __future__ import annotations

import torch

from ..runtime.gates import combine, decide

K = 2  # a Gate holds one or two conditions


class Gates:
    def __init__(self, layout, slots: int, rows: int, max_tokens: int, lanes: int):
        self.read_layers = list(layout.read_layers)
        d, self.R, self.S = layout.hidden, rows, slots
        self.vec = {l: torch.zeros(slots * K, d) for l in self.read_layers}  # (slot, atom) rows
        self.thr = torch.zeros(slots, K)
        self.greater = torch.zeros(slots, K, dtype=torch.bool)
        self.use_last = torch.zeros(slots, K, dtype=torch.bool)
        self.a_idx = torch.full((slots,), -1, dtype=torch.long)
        self.b_idx = torch.full((slots,), -1, dtype=torch.long)
        self.is_or = torch.zeros(slots, dtype=torch.bool)
        self.lane_gated = torch.zeros(lanes, slots, dtype=torch.bool)
        # per gate row (index R: the sentinel of tokens without one)
        self.sums = torch.zeros(rows + 1, K)
        self.last = torch.zeros(rows + 1, K)
        self.row_slot = torch.zeros(rows + 1, dtype=torch.long)
        self.row_plen = torch.ones(rows + 1)
        self.on = torch.zeros(rows + 1, dtype=torch.bool)
        # per token of the step
        self.tok_row = torch.full((max_tokens,), rows, dtype=torch.long)
        self.tok_slot = torch.zeros(max_tokens, dtype=torch.long)
        self.tok_plen = torch.zeros(max_tokens, dtype=torch.long)
        self.tok_pos = torch.zeros(max_tokens, dtype=torch.long)
        self.tok_gated = torch.zeros(lanes, max_tokens, dtype=torch.bool)
        self.free = list(range(rows))
        self.row_of: dict[str, int] = {}
        self.active = False  # host flag: some token of this step has a gate row

    # --- tables ------------------------------------------------------------------------
    def load(self, slot: int, gate, gated_lanes) -> None:
        for l in self.read_layers:
            self.vec[l][slot * K : (slot + 1) * K].zero_()
        for k, c in enumerate(gate.conditions):
            self.vec[c.layer][slot * K + k].copy_(c.vector)
            self.thr[slot, k] = c.threshold
            self.greater[slot, k] = c.comparator == ">"
            self.use_last[slot, k] = c.aggregate == "last"
        self.a_idx[slot] = 0
        self.b_idx[slot] = 1 if len(gate.conditions) == 2 else -1
        self.is_or[slot] = gate.op == "or"
        for lane in gated_lanes:
            self.lane_gated[lane, slot] = True

    def clear(self, slot: int) -> None:
        for l in self.read_layers:
            self.vec[l][slot * K : (slot + 1) * K].zero_()
        self.a_idx[slot] = self.b_idx[slot] = -1
        self.lane_gated[:, slot] = False

    # --- requests ------------------------------------------------------------------------
    def admit(self, request_id: str, slot: int, prompt_len: int) -> None:
        row = self.free.pop()
        self.row_of[request_id] = row
        self.row_slot[row] = slot
        self.row_plen[row] = float(prompt_len)
        self.sums[row].zero_()
        self.last[row].zero_()

    def release(self, request_id: str) -> None:
        row = self.row_of.pop(request_id, None)
        if row is not None:
            self.free.append(row)

    def restart(self, request_ids) -> None:
        """Requests whose prefill starts at position 0 this step: their sums start afresh."""
        rows = [self.row_of[r] for r in request_ids if r in self.row_of]
        if rows:
            idx = torch.tensor(rows)
            self.sums.index_fill_(0, idx, 0.0)
            self.last.index_fill_(0, idx, 0.0)

    # --- the forward -------------------------------------------------------------------
    def reader(self, layer: int):
        vec = self.vec[layer]

        def read(module, args):
            hidden, residual = args[1], args[2]
            h = hidden if residual is None else hidden + residual
            n = h.shape[0]
            row, slot = self.tok_row[:n], self.tok_slot[:n]
            pos, plen = self.tok_pos[:n], self.tok_plen[:n]
            proj = (h.float() @ vec.t()).view(n, self.S, K)
            proj = proj.gather(1, slot.view(n, 1, 1).expand(n, 1, K)).squeeze(1)  # (n, K)
            has = row < self.R
            in_prompt = (has & (pos < plen)).unsqueeze(1)
            at_last = (has & (pos == plen - 1)).unsqueeze(1)
            self.sums.index_add_(0, row, torch.where(in_prompt, proj, 0.0))
            self.last.index_add_(0, row, torch.where(at_last, proj, 0.0))
            mean = self.sums / self.row_plen.unsqueeze(1)
            rs = self.row_slot
            score = torch.where(self.use_last[rs], self.last, mean)
            atoms = decide(score, self.thr[rs], self.greater[rs])
            self.on.copy_(combine(atoms, rs, self.a_idx, self.b_idx, self.is_or))
            return None

        return read

    def mask(self, lane: int, m: torch.Tensor) -> torch.Tensor:
        n = m.shape[0]
        off = self.tok_gated[lane, :n] & ~self.on[self.tok_row[:n]]
        return torch.where(off, -1, m)
