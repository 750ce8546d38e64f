"""Composing a slot's interventions at one module side into one affine table entry.

Every sequence of scale/add interventions on the same rows is an affine map
y -> y * f + g per element; the ops apply it as y * (1 + delta*mask) + coef*bias. A group
may end with one ablate (runtime/lanes.py puts whatever follows an ablate in a later lane):
its unit direction and strength are the entry's `dir` / `alpha`, applied after the affine
part (ops.steer_ablate_). The common
single-intervention forms are stored as given (bit-exact with the hook baseline); anything
longer is folded in fp64 into mask = f - 1, delta = 1, bias = g, coef = 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..plan import Intervention
from .dense import Dense


@dataclass
class Affine:
    """(E, D) tables and (E,) strengths of one slot; None where the slot has no such part."""

    mask: Tensor | None
    delta: Tensor | None
    bias: Tensor | None
    coef: Tensor | None
    dir: Tensor | None = None  # (E, D) unit rows: ablated after the affine part
    alpha: Tensor | None = None  # (E,)
    gated: bool = False  # set by slot_groups: the lane's interventions wait for the slot's gate


def _strength(iv: Intervention) -> Tensor:
    return torch.full((iv.entries,), iv.strength, dtype=torch.float32)


def compose(ivs: Sequence[Intervention]) -> Affine:
    if any(iv.kind == "ablate" for iv in ivs[:-1]):
        raise AssertionError("an ablate must end its lane group (runtime/lanes.py)")
    if ivs[-1].kind == "ablate":
        aff = compose(ivs[:-1]) if len(ivs) > 1 else Affine(None, None, None, None)
        aff.dir, aff.alpha = ivs[-1].tensor, _strength(ivs[-1])
        return aff
    kinds = [iv.kind for iv in ivs]
    if kinds == ["scale"]:
        return Affine(ivs[0].tensor, _strength(ivs[0]), None, None)
    if kinds == ["add"]:
        return Affine(None, None, ivs[0].tensor, _strength(ivs[0]))
    if kinds == ["scale", "add"]:
        return Affine(ivs[0].tensor, _strength(ivs[0]), ivs[1].tensor, _strength(ivs[1]))
    f = torch.ones_like(ivs[0].tensor, dtype=torch.float64)
    g = torch.zeros_like(f)
    for iv in ivs:
        t = iv.tensor.double()
        if iv.kind == "scale":
            k = 1.0 + iv.strength * t
            f, g = f * k, g * k
        else:
            g = g + iv.strength * t
    ones = torch.ones(f.shape[0], dtype=torch.float32)
    return Affine((f - 1).float(), ones, g.float(), ones.clone())


def dense_affine(parts: Sequence[Affine], device):
    """Lanes applied one after another on every row, as (scale, shift) pairs of (D,) fp32.

    A single part keeps the ops' own fp32 arithmetic: scale = 1 + delta*mask, shift = coef*bias.
    Parts fold into one (scale, shift) up to an ablation, which ends that Dense step; what
    follows is the next step of the chain (Dense.then).
    """

    def one(aff: Affine):
        scale = None if aff.mask is None else 1.0 + aff.delta[0] * aff.mask[0]
        shift = None if aff.bias is None else aff.coef[0] * aff.bias[0]
        return scale, shift

    to = lambda t: None if t is None else t.to(device).contiguous()  # noqa: E731
    steps: list = []
    scale = shift = None
    own = (None, None)  # scale's (mask, delta) while it is one part's own (Dense.mask)
    for aff in parts:
        s2, b2 = one(aff)
        if s2 is not None:
            own = (aff.mask[0], aff.delta[0]) if scale is None else (None, None)
            scale = s2 if scale is None else scale * s2
            shift = None if shift is None else shift * s2
        if b2 is not None:
            shift = b2 if shift is None else shift + b2
        if aff.dir is not None:
            steps.append(
                Dense(
                    to(scale),
                    to(shift),
                    dir=to(aff.dir[0]),
                    alpha=to(aff.alpha[0]),
                    mask=to(own[0]),
                    delta=to(own[1]),
                )
            )
            scale = shift = None
            own = (None, None)
    if scale is not None or shift is not None or not steps:
        steps.append(Dense(to(scale), to(shift), mask=to(own[0]), delta=to(own[1])))
    for a, b in zip(steps, steps[1:]):
        a.then = b
    return steps[0]
