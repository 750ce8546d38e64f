"""The grid a tune sweeps: layers x strengths, checked against the model."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import PlanError

# fractions of the depth tried by default, and strengths (the plan's own units: CAA/ActAdd
# multiply their vector, SADI's δ); chosen from the default model's measured ranges (docs/tuning.md:
# CAA sentiment moves log-odds most per unit KL at 40% of the depth, ActAdd at 20-30%; past 45%
# the damage rises faster than the effect)
DEFAULT_DEPTHS = (0.2, 0.3, 0.4)
DEFAULT_STRENGTHS = (2.0, 4.0, 6.0, 8.0)


@dataclass(frozen=True)
class Grid:
    layers: tuple[int, ...]
    strengths: tuple[float, ...]

    def cells(self) -> list[tuple[int, float]]:
        return [(layer, s) for layer in self.layers for s in self.strengths]


def default_layers(n_layers: int) -> tuple[int, ...]:
    return tuple(sorted({max(1, min(n_layers - 1, round(f * n_layers))) for f in DEFAULT_DEPTHS}))


def make_grid(n_layers: int, layers=None, strengths=None) -> Grid:
    """PlanError naming the bad value unless every layer is an int in [0, n_layers) and every
    strength a finite non-zero number."""
    layers = default_layers(n_layers) if layers is None else layers
    strengths = DEFAULT_STRENGTHS if strengths is None else strengths
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise PlanError(f"layers must be a list of ints, got {layers!r}")
    if isinstance(strengths, (str, bytes)) or not hasattr(strengths, "__iter__"):
        raise PlanError(f"strengths must be a list of numbers, got {strengths!r}")
    layers, strengths = list(layers), list(strengths)
    if not layers or not strengths:
        raise PlanError(f"the grid needs at least one layer and one strength, got {layers} x {strengths}")
    for x in layers:
        if not isinstance(x, int) or isinstance(x, bool) or not 0 <= x < n_layers:
            raise PlanError(f"layer {x!r} is not an int in [0, {n_layers}) (the model has {n_layers} layers)")
    for s in strengths:
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or s == 0:
            raise PlanError(f"strength {s!r} must be a finite non-zero number")
    return Grid(tuple(sorted(set(layers))), tuple(sorted({float(s) for s in strengths})))
