"""Each step's row maps, from vLLM's own batch: which request each token belongs to, its
position and its request's true prompt length, turned into one table row per token and lane
(steerfast.runtime.packed: the same maps as steerfast serve's continuous batching).

Host work per step: one list lookup per running request and a few small tensor ops over the
step's tokens; then one copy into the persistent row-map buffer the graph reads.
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
    slots = [bank.slot_of.get(r, -1) for r in ib.req_ids[:n]]
    if max(slots, default=-1) < 0:
        if bank.step_active:  # the graph still reads the maps: leave them all -1
            bank.rows.fill_(-1)
            bank.step_active = False
        return
    if total > bank.rows.shape[1]:
        raise RuntimeError(f"step of {total} tokens exceeds the row-map buffer ({bank.rows.shape[1]})")
    seq_slot = torch.tensor(slots + [-1], dtype=torch.long)
    plen = np.append(ib.num_prompt_tokens[:n], 0).astype(np.int64)
    maps = packed_row_maps(
        torch.from_numpy(qsl.astype(np.int64)),
        runner.positions[:total],
        n,
        total,
        seq_slot,
        torch.from_numpy(plen),
        bank.lane_code,
        bank.lane_n,
        bank.entries,
    )
    for lane, m in enumerate(maps):
        bank.rows[lane, :total].copy_(m)
    bank.rows[:, total:].fill_(-1)
    bank.step_active = True
