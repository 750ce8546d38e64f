"""Row maps: for each lane, the table entry of every row of the current call (-1 = untouched).

Computed once per forward of the decoder stack, with tensor ops only, from the call's
position masks, each row's slot and each slot's policy in that lane.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..positions import CallInfo

# policy name -> code; the order is the stacking order in row_maps
POLICY_CODES = {"prefix": 0, "prompt_last": 1, "last": 2, "from_prompt_end": 3, "all": 4}


def row_maps(
    info: CallInfo, row_slot: Tensor, lane_code: Tensor, lane_n: Tensor, entries: int
) -> list[Tensor]:
    """row_slot (B,) slot per batch row (-1 = unsteered); lane_code / lane_n (L, S)."""
    m = info.masks()
    stacked = torch.stack([m[name] for name in POLICY_CODES], dim=1)  # (B, 5, T)
    real_pos = m["real_pos"]
    valid = row_slot >= 0
    slot = row_slot.clamp(min=0)
    batch = torch.arange(slot.shape[0], device=slot.device)
    maps = []
    for lane in range(lane_code.shape[0]):
        code = lane_code[lane][slot]
        n = lane_n[lane][slot]
        is_prefix = (code == POLICY_CODES["prefix"]).unsqueeze(1)
        sel = stacked[batch, code.clamp(min=0)]  # (B, T)
        sel = sel & (valid & (code >= 0)).unsqueeze(1) & (~is_prefix | (real_pos < n.unsqueeze(1)))
        entry = slot.unsqueeze(1) * entries + torch.where(is_prefix, real_pos.clamp(max=entries - 1), 0)
        maps.append(torch.where(sel, entry, -1).reshape(-1).to(torch.int32))
    return maps
