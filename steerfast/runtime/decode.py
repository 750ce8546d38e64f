"""Whole-tensor realisations of a decode step (docs/architecture.md, Realisations), also with a distinct slot per row.

In a decode step (one new token per row, on a KV cache) every position policy selects either
every row of a slot or none of them: `last`, `from_prompt_end` and `all` select the new token,
`prefix:n` and `prompt_last` never do. So which table entry steers each row depends on the
row's slot alone, known on the host from `bank.assign()`: the row maps of that step are a
constant, and each module side collapses to one affine map per row, `y * scale + shift`.

- every row on one slot (patch(), assign_all, or assign() with equal slots): (D,) tables,
  one per slot, built once per load;
- distinct slots per row: (B, D) tables stacked from the slots' (D,) ones (rows on slot -1,
  or on a slot that does not steer that side, get scale 1 and shift 0, which are exact),
  built once per row assignment, at its first decode step.

The projection then runs as F.linear with the shift riding its bias (addmm with a (D,) or
(B, D) bias: no extra op) and the scale as one multiply: no row maps, no per-row kernel, no
per-layer Python beyond a table lookup.

A side with an ablation (a reduction per row) runs each step of its chain as one call of the
fused in-place op (steer_ablate_, or steer_rows_ for a step without a direction) on a tensor
of ours, with the step's tables in the op's format (`Dense.op_tables`): rows = 0 as one entry
that every row selects, rows = B as one entry per row. Under torch.compile `Dense.apply` (plain
torch ops, out of place) runs instead, as the prefill's decomposed path does.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..positions import parse_policy
from .compose import dense_affine
from .dense import Dense

DENSE_POLICIES = ("last", "from_prompt_end", "all")


def slot_affines(groups, device) -> dict[int, dict[tuple[int, str], Dense]]:
    """{slot: {(module id, side): Dense (D,)}} of the lanes a decode step applies.

    groups: the bank's (slot, lane, policy, module, side, Affine), in lane order per slot.
    """
    per: dict[int, dict[tuple[int, str], list]] = {}
    for slot, _lane, policy, module, side, aff in groups:
        if parse_policy(policy)[0] in DENSE_POLICIES:
            per.setdefault(slot, {}).setdefault((id(module), side), []).append(aff)
    return {
        slot: {key: dense_affine(parts, device) for key, parts in sides.items()}
        for slot, sides in per.items()
    }


def _stack(parts: list[Dense | None], attr: str, fill: float, width: int, like: Tensor) -> Tensor | None:
    if all(p is None or getattr(p, attr) is None for p in parts):
        return None
    shape = () if attr == "alpha" else (width,)
    filler = torch.full(shape, fill, dtype=torch.float32, device=like.device)
    return torch.stack([filler if p is None or getattr(p, attr) is None else getattr(p, attr) for p in parts])


def _stacked_scale_op(parts: list[Dense | None], width: int, like: Tensor) -> dict:
    """The (B, D) mask and (B,) delta of a stacked step: each row's own op form of its scale
    (mask 0, delta 0 where the row has none: exactly 1)."""
    if all(p is None or p.scale is None for p in parts):
        return {}
    zero = torch.zeros(width, dtype=torch.float32, device=like.device)
    one, nil = (torch.tensor(v, dtype=torch.float32, device=like.device) for v in (1.0, 0.0))
    pairs = [
        (zero, nil)
        if p is None or p.scale is None
        else (p.mask, p.delta)
        if p.mask is not None
        else (p.scale - 1.0, one)
        for p in parts
    ]
    return {"mask": torch.stack([m for m, _ in pairs]), "delta": torch.stack([d for _, d in pairs])}


def _chain(d: Dense | None) -> list:
    out = []
    while d is not None:
        out.append(d)
        d = d.then
    return out


def _stacked(parts: list[Dense | None], width: int, like: Tensor) -> Dense:
    """One (B, D) chain from one chain per row, step by step; a row with a shorter chain gets
    identity steps (scale 1, shift 0, a zero direction: all exact), and slot -1 in that step,
    which the fused op skips."""
    chains = [_chain(p) for p in parts]
    steps = []
    for k in range(max(len(c) for c in chains)):
        at = [c[k] if k < len(c) else None for c in chains]
        steps.append(
            Dense(
                _stack(at, "scale", 1.0, width, like),
                _stack(at, "shift", 0.0, width, like),
                len(parts),
                _stack(at, "dir", 0.0, width, like),
                _stack(at, "alpha", 0.0, width, like),
                slots=torch.tensor(
                    [-1 if p is None else r for r, p in enumerate(at)], dtype=torch.int32, device=like.device
                ),
                **_stacked_scale_op(at, width, like),
            )
        )
    for a, b in zip(steps, steps[1:]):
        a.then = b
    return steps[0]


def row_affines(per_slot: dict, row_slots: tuple[int, ...]) -> dict[tuple[int, str], Dense]:
    """{(module id, side): Dense with (B, D) scale / shift} for one row assignment."""
    keys: dict[tuple[int, str], Dense] = {}
    for s in row_slots:
        for key, d in per_slot.get(s, {}).items():
            keys.setdefault(key, d)
    out = {}
    for key, sample in keys.items():
        like = sample.any_table()
        parts = [per_slot.get(s, {}).get(key) for s in row_slots]
        out[key] = _stacked(parts, like.shape[-1], like)
    return out


def decode_key(uniform: bool, uniform_slot: int, row_host: tuple[int, ...] | None, batch: int):
    """What a decode step of `batch` rows runs: ("slot", s), ("rows", slots), or None when the
    rows are not known for this batch (the row-map path then raises the usual error)."""
    if uniform:
        return ("slot", uniform_slot)
    if row_host is None or len(row_host) != batch:
        return None
    first = row_host[0] if row_host else -1
    if all(s == first for s in row_host):
        return ("slot", first)
    return ("rows", row_host)


__all__ = ["Dense", "DENSE_POLICIES", "slot_affines", "row_affines", "decode_key"]
