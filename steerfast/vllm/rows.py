"""Each step's row maps, from vLLM's own batch: which request each token belongs to, its
position and its request's true prompt length, turned into one table row per token and lane
(steerfast.runtime.packed: the same maps as steerfast serve's continuous batching).

Host work per step: one dict lookup per running request and a few small tensor ops over the
step's tokens; then one copy into the persistent buffers the graph reads.
"""

from __future__ import annotations

import numpy as np
import torch

from ..runtime.packed import packed_row_maps


def fill_rows(bank, runner) -> None:
    ib = runner.input_batch
    n = ib.num_reqs
    qsl = runner.query_start_loc.np[: n + 1]
    total = int(qsl[n])
    req_ids = ib.req_ids[:n]
    slots = [bank.slot_of.get(r, -1) for r in req_ids]
    if max(slots, default=-1) < 0:
        if bank.step_active:  # the graph still reads the maps: leave them all -1
            bank.rows[:, : bank.rows_written].fill_(-1)
            bank.rows_written = 0
            bank.step_active = False
            if bank.gates is not None:
                _idle_gates(bank.gates)
        return
    if total > bank.rows.shape[1]:
        raise RuntimeError(f"step of {total} tokens exceeds the row-map buffer ({bank.rows.shape[1]})")
    seq_slot = torch.tensor(slots + [-1], dtype=torch.long)
    plen = np.append(ib.num_prompt_tokens[:n], 0).astype(np.int64)
    positions = runner.positions[:total]
    maps = packed_row_maps(
        torch.from_numpy(qsl.astype(np.int64)),
        positions,
        n,
        total,
        seq_slot,
        torch.from_numpy(plen),
        bank.lane_code,
        bank.lane_n,
        bank.entries,
    )
    _count_prefills(bank, ib, n, req_ids)
    for lane, m in enumerate(maps):
        bank.rows[lane, :total].copy_(m)
    if bank.rows_written > total:  # every column past this step's tokens stays -1
        bank.rows[:, total : bank.rows_written].fill_(-1)
    bank.rows_written = total
    bank.step_active = True
    if bank.gates is not None:
        _gate_step(bank.gates, req_ids, qsl, total, seq_slot, plen, positions)


def _idle_gates(g) -> None:
    g.tok_row.fill_(g.R)
    g.tok_gated.zero_()
    g.active = False


def _gate_step(g, req_ids, qsl, total, seq_slot, plen, positions) -> None:
    rows = [g.row_of.get(r, g.R) for r in req_ids]
    if min(rows, default=g.R) >= g.R:
        if g.active:
            _idle_gates(g)
        return
    counts = np.diff(qsl)
    seq = torch.from_numpy(np.repeat(np.arange(len(req_ids)), counts))
    slot = seq_slot[:-1].clamp(min=0)[seq]
    g.tok_row[:total] = torch.tensor(rows, dtype=torch.long)[seq]
    g.tok_row[total:] = g.R
    g.tok_slot[:total] = slot
    g.tok_plen[:total] = torch.from_numpy(plen[:-1])[seq]
    g.tok_pos[:total] = positions
    g.tok_gated[:, :total] = g.lane_gated[:, slot] & (seq_slot[:-1][seq] >= 0)
    g.tok_gated[:, total:] = False
    starts = positions[torch.from_numpy(qsl[:-1].astype(np.int64)).clamp(max=max(total - 1, 0))]
    g.restart([r for r, s, c in zip(req_ids, starts.tolist(), counts) if s == 0 and c > 0])
    g.active = True


def _count_prefills(bank, ib, n, req_ids) -> None:
    """Steered requests whose prefill starts at position 0 this step; a second start is a
    re-prefill after preemption (bank.recomputed, reported by steerfast_stats)."""
    for i in np.flatnonzero(ib.num_computed_tokens_cpu[:n] == 0):
        rid = req_ids[i]
        if rid in bank.slot_of:
            seen = bank.prefill_starts.get(rid, 0)
            bank.recomputed += seen > 0
            bank.prefill_starts[rid] = seen + 1
