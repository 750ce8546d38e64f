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

from dataclasses import dataclass, field

import torch
from torch import Tensor

from .. import ops
from ..errors import SteeringError
from ..positions import parse_policy
from .compose import dense_affine

DENSE_POLICIES = ("last", "from_prompt_end", "all")


@dataclass
class Dense:
    """The whole-call realisation of one side: x -> x * scale + shift (fp32 tables), then,
    where `dir` is set, x -> x - alpha * (x . dir) * dir, then the next step `then`.

    rows = 0: (D,) tables, the same map on every row; rows = B: (B, D) tables, one map per
    row of a B-row call (a decode step with a distinct slot per row, runtime/decode.py).
    alpha is 0-d for rows = 0, (B,) for rows = B. slots (rows = B only): the op's entry per
    row for this step, -1 where the row's chain has no such step (the op leaves it alone).
    mask / delta: scale in the ops' form (scale = 1 + delta * mask, as the ops compute it),
    where scale is one plan part's own (so the fused op rounds exactly as the row ops do);
    None where it is a fold of several parts (then mask = scale - 1, delta = 1).
    """

    scale: Tensor | None
    shift: Tensor | None
    rows: int = 0
    dir: Tensor | None = None
    alpha: Tensor | None = None
    then: Dense | None = None
    slots: Tensor | None = None
    mask: Tensor | None = None
    delta: Tensor | None = None
    _op: tuple | None = field(default=None, repr=False, compare=False)
    _calls: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def plain(self) -> bool:
        """Only scale / shift: no ablation anywhere in the chain."""
        return self.dir is None and self.then is None

    def any_table(self) -> Tensor:
        for t in (self.scale, self.shift, self.dir):
            if t is not None:
                return t
        return self.then.any_table()

    def to(self, device) -> Dense:
        mv = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Dense(
            mv(self.scale),
            mv(self.shift),
            self.rows,
            mv(self.dir),
            mv(self.alpha),
            None if self.then is None else self.then.to(device),
            mv(self.slots),
            mv(self.mask),
            mv(self.delta),
        )

    def apply(self, rows: Tensor) -> Tensor:
        """Out of place, in fp32 (fp64 for fp64 rows), stored in rows' dtype."""
        self.check_rows(rows.shape[0])
        a = rows.to(torch.promote_types(rows.dtype, torch.float32))
        step = self
        while step is not None:
            if step.scale is not None:
                a = a * step.scale
            if step.shift is not None:
                a = a + step.shift
            if step.dir is not None:
                r = step.dir.to(a.dtype)
                k = step.alpha.to(a.dtype)
                k = k.unsqueeze(-1) if k.dim() else k
                a = a - (k * (a * r).sum(-1, keepdim=True)) * r
            step = step.then
        return a.to(rows.dtype)

    def apply_(self, rows: Tensor) -> Tensor:
        """In place on rows, which must be ours (a fresh projection output or a copy) and
        contiguous: one fused op call per step of the chain. Through the ops seam, so the
        reference backend, fp64 rows and autograd behave as in the prefill's row ops."""
        n = rows.shape[0]
        self.check_rows(n)
        for ablate, args in self.calls(n):  # the per-site cost in decode is this loop: keep it bare
            if ablate:
                ops.steer_ablate_(rows, *args)
            else:
                ops.steer_rows_(rows, *args)
        return rows

    def calls(self, n: int) -> list:
        """The chain's op calls for an n-row call, built once per n (see _prepare)."""
        calls = self._calls.get(n)
        if calls is None:
            calls = self._calls[n] = self._prepare(n)
        return calls

    def _prepare(self, n: int) -> list:
        """The chain's op calls for an n-row call: (ablates?, the op's arguments after y)."""
        with torch.inference_mode(False):  # may be saved for backward by a later step
            uniform = None if self.rows else torch.zeros(n, dtype=torch.int32, device=self.any_table().device)
        calls = []
        step = self
        while step is not None:
            mask, delta, bias, coef, direction, alpha = step.op_tables()
            slots = step.slots if step.rows else uniform
            if direction is not None:
                calls.append((True, (slots, mask, delta, bias, coef, direction, alpha)))
            elif mask is not None or bias is not None:
                calls.append((False, (slots, mask, delta, bias, coef)))
            step = step.then
        return calls

    def op_tables(self) -> tuple:
        """(mask, delta, bias, coef, direction, alpha) in the ops' format, built once: scale
        as its own (mask, delta), or as mask = scale - 1 with delta 1 where it is a fold (the
        op's 1 + delta * mask is then scale, or within one rounding of 1 where |scale| < 1/2);
        shift as bias with coef 1 (exact)."""
        if self._op is None:
            with torch.inference_mode(False):  # may be saved for backward by a later step
                like = self.any_table()
                n = self.rows or 1
                ones = torch.ones(n, dtype=torch.float32, device=like.device)
                as_rows = lambda t: t.reshape(n, -1).contiguous()  # noqa: E731
                mask = delta = None
                if self.mask is not None:
                    mask, delta = as_rows(self.mask), self.delta.reshape(n).contiguous()
                elif self.scale is not None:
                    mask, delta = as_rows(self.scale - 1.0), ones
                bias = None if self.shift is None else as_rows(self.shift)
                direction = None if self.dir is None else as_rows(self.dir)
                alpha = None if self.alpha is None else self.alpha.reshape(n).contiguous()
                self._op = (
                    mask,
                    delta,
                    bias,
                    None if bias is None else ones,
                    direction,
                    alpha,
                )
        return self._op

    def check_rows(self, n: int) -> None:
        if self.rows and n != self.rows:
            raise SteeringError(
                f"a steered module got {n} rows in a decode step of {self.rows} rows; "
                "steerfast cannot tell which request each row belongs to"
            )


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
