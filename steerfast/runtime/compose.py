"""Composing a slot's interventions at one module side into one affine table entry.

Every sequence of scale/add interventions on the same rows is an affine map
y -> y * f + g per element; the ops apply it as y * (1 + delta*mask) + coef*bias. The common
single-intervention forms are stored as given (bit-exact with the hook baseline); anything
longer is folded in fp64 into mask = f - 1, delta = 1, bias = g, coef = 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import Tensor

from ..plan import Intervention


@dataclass
class Affine:
    """(E, D) tables and (E,) strengths of one slot; None where the slot has no such part."""
    mask: Optional[Tensor]
    delta: Optional[Tensor]
    bias: Optional[Tensor]
    coef: Optional[Tensor]


def _strength(iv: Intervention) -> Tensor:
    return torch.full((iv.entries,), iv.strength, dtype=torch.float32)


def compose(ivs: Sequence[Intervention]) -> Affine:
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
