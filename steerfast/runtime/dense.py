"""`Dense`: one module side's steering as whole-tensor maps, x -> x * scale + shift, then an
optional ablation, chained (docs/architecture.md, Realisations). Built by
runtime/compose.dense_affine, applied by runtime/decode.py and runtime/steered.py."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from .. import ops
from ..errors import SteeringError


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


__all__ = ["Dense"]
