"""The bank's slot tables: which (module, side, lane) tables a set of loaded plans needs, their
allocation, and writing each slot's composed entries into them. Plain functions over the tables
runtime/bank.py owns; the bank calls them when a plan is loaded or unloaded."""

from __future__ import annotations

import torch
from torch import Tensor

from ..positions import parse_policy
from .rows import POLICY_CODES
from .steered import ModuleTables, SideTables


def table_layout(groups, plans) -> tuple[int, int, dict[tuple, list]]:
    """(lanes, entries per slot, {(module id, side, lane): [module, dim, scale?, add?, ablate?]})."""
    lanes = 1 + max([g[1] for g in groups] or [-1])
    entries = max([iv.entries for p in plans if p is not None for iv in p.interventions] or [1])
    keys: dict[tuple, list] = {}
    for _slot, lane, _policy, module, side, aff in groups:
        dim = next(t for t in (aff.mask, aff.bias, aff.dir) if t is not None).shape[1]
        flags = keys.setdefault((id(module), side, lane), [module, dim, False, False, False])
        flags[2] |= aff.mask is not None
        flags[3] |= aff.bias is not None
        flags[4] |= aff.dir is not None
    return lanes, entries, keys


def allocate_tables(keys: dict[tuple, list], lanes: int, rows: int, device) -> dict[int, ModuleTables]:
    """Zeroed tables of `rows` entries (slots × entries) for every (module, side, lane) in `keys`."""

    def zeros(*shape):
        return torch.zeros(shape, dtype=torch.float32, device=device)

    new_tables: dict[int, ModuleTables] = {}
    for (mid, side, lane), (_module, dim, scale, add, ablate) in keys.items():
        mt = new_tables.setdefault(mid, ModuleTables([None] * lanes, [None] * lanes))
        st = SideTables(
            zeros(rows, dim) if scale else None,
            zeros(rows) if scale else None,
            zeros(rows, dim) if add else None,
            zeros(rows) if add else None,
            zeros(rows, dim) if ablate else None,  # a zero direction leaves a row as it is
            zeros(rows) if ablate else None,
        )
        (mt.inputs if side == "in" else mt.outputs)[lane] = st
    return new_tables


def zero_tables(tables: dict[int, ModuleTables]) -> None:
    for mt in tables.values():
        for st in mt.inputs + mt.outputs:
            for t in (st.mask, st.delta, st.bias, st.coef, st.dir, st.alpha) if st is not None else ():
                if t is not None:
                    t.zero_()


def fill_tables(
    tables: dict[int, ModuleTables], groups, entries: int, lane_code: Tensor, lane_n: Tensor
) -> None:
    """Write each slot's composed lane entries (runtime/lanes.slot_groups) and position codes."""
    for slot, lane, policy, module, side, aff in groups:
        name, n = parse_policy(policy)
        lane_code[lane, slot] = POLICY_CODES[name]
        lane_n[lane, slot] = n
        mt = tables[id(module)]
        st = (mt.inputs if side == "in" else mt.outputs)[lane]
        lo = slot * entries
        for dst, src in (
            (st.mask, aff.mask),
            (st.delta, aff.delta),
            (st.bias, aff.bias),
            (st.coef, aff.coef),
            (st.dir, aff.dir),
            (st.alpha, aff.alpha),
        ):
            if src is not None:
                dst[lo : lo + src.shape[0]].copy_(src)


__all__ = ["table_layout", "allocate_tables", "zero_tables", "fill_tables"]
