"""Intervention: one edit at one site of one layer, checked when it is made (the unit of a
SteeringPlan, steerfast/plan.py, which re-exports it with the bounds below)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .adapters import SITES
from .errors import PlanError
from .positions import parse_policy

KINDS = ("add", "scale", "ablate")
UNIT_TOL = 1e-4  # an ablate direction row must have norm 1 within this (it is a projection)
RESIDUAL_SITES = ("embed.out", "attn.out", "mlp.out")
# |strength| * max|tensor| of one intervention: beyond it an add or a scale of an fp32/bf16 stream
# can overflow (norms square the stream; 1e6 squared stays far below fp32's 3.4e38 even summed
# over every layer's edit), so such plans are refused up front instead of giving inf/NaN logits.
MAX_EDIT = 1e6


def _strength(value) -> float:
    if value is None or isinstance(value, (bool, str, bytes)):
        raise PlanError(f"strength must be a finite number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise PlanError(f"strength must be a finite number, got {value!r}") from exc
    if not math.isfinite(out):
        raise PlanError(f"strength must be finite, got {value!r}")
    return out


@dataclass(frozen=True)
class Intervention:
    """One intervention at one site of one layer.

    kind "add":   y[r] += strength * tensor[e]        (tensor (E, D): E=1, or n for prefix:n)
    kind "scale": y[r] *= 1 + strength * tensor[e]    (tensor (E, D) mask; SADI's δ is strength,
                                                        the official code's multiplier is 1 + δ)
    kind "ablate": y[r] -= strength * (y[r] . tensor[e]) * tensor[e]   (tensor rows unit norm;
                   strength α = 1 removes the direction, 0 < α < 1 shrinks it, 2 flips it)
    Interventions at one site apply in plan order (docs/architecture.md, Composition).
    The entry e is the token's prompt position for prefix:n, else 0.
    Immutable (use SteeringPlan.with_strength / with_positions, or build a new one);
    SteeringPlan.validate re-checks the tensor, which could still be edited in place.
    """

    layer: int
    site: str
    kind: str
    tensor: Tensor
    positions: str = "all"
    strength: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "strength", _strength(self.strength))
        self.check()
        t = self.tensor.detach()
        object.__setattr__(
            self, "tensor", (t.unsqueeze(0) if t.dim() == 1 else t).to(torch.float32).contiguous()
        )

    def check(self) -> None:
        """Raise PlanError if any field is invalid (the tensor's values included)."""
        if not isinstance(self.site, str) or self.site not in SITES:
            raise PlanError(f"unknown site {self.site!r}; expected one of {', '.join(SITES)}")
        if not isinstance(self.kind, str) or self.kind not in KINDS:
            raise PlanError(f"unknown kind {self.kind!r}; expected 'add', 'scale' or 'ablate'")
        if not isinstance(self.layer, int) or isinstance(self.layer, bool) or self.layer < 0:
            raise PlanError(f"layer must be a non-negative int, got {self.layer!r}")
        if self.site == "embed.out" and self.layer != 0:
            raise PlanError("site embed.out belongs to layer 0")
        if not isinstance(self.positions, str):
            raise PlanError(f"positions must be a string such as 'all' or 'prefix:4', got {self.positions!r}")
        name, n = parse_policy(self.positions)
        if not isinstance(self.tensor, Tensor):
            raise PlanError(f"intervention tensor must be a torch.Tensor, got {type(self.tensor).__name__}")
        t = self.tensor.detach()
        if t.dim() == 1:
            t = t.unsqueeze(0)
        if t.dim() != 2 or t.shape[0] == 0 or t.shape[1] == 0:
            raise PlanError(
                f"intervention tensor must be (D,) or (E, D), got shape {tuple(self.tensor.shape)}"
            )
        if not t.is_floating_point():
            raise PlanError(f"intervention tensor must be floating point, got {t.dtype}")
        if t.is_meta:
            raise PlanError(
                f"intervention tensor at layer {self.layer}, {self.site} is on the meta device (no values); "
                "materialise it (e.g. .to('cpu') after loading real weights)"
            )
        want = n if name == "prefix" else 1
        if t.shape[0] != want:
            raise PlanError(
                f"positions {self.positions!r} needs a tensor with {want} row(s), got {t.shape[0]} "
                f"(layer {self.layer}, {self.site})"
            )
        if not torch.isfinite(t).all():
            raise PlanError(f"intervention tensor at layer {self.layer}, {self.site} has NaN or inf")
        if self.kind == "ablate":
            if self.site in ("attn.heads", "mlp.neurons"):
                raise PlanError(
                    f"kind 'ablate' acts on the residual stream: site must be one of "
                    f"{', '.join(RESIDUAL_SITES)}, got {self.site!r}"
                )
            norms = t.double().norm(dim=1)
            if ((norms - 1).abs() > UNIT_TOL).any():
                raise PlanError(
                    f"kind 'ablate' needs unit direction rows (norm 1 within {UNIT_TOL:g}); "
                    f"layer {self.layer}, {self.site} has norms {[round(v, 6) for v in norms.tolist()]}: "
                    "normalise the direction first"
                )
        edit = abs(_strength(self.strength)) * float(t.abs().max())
        if edit > MAX_EDIT:
            raise PlanError(
                f"intervention at layer {self.layer}, {self.site}: |strength| x max|tensor| = {edit:.3g} "
                f"(strength {self.strength!r}) exceeds {MAX_EDIT:g}, beyond which logits can overflow"
            )

    @property
    def entries(self) -> int:
        return self.tensor.shape[0]

    @property
    def dim(self) -> int:
        return self.tensor.shape[1]

    def header(self) -> dict:
        return {
            "layer": self.layer,
            "site": self.site,
            "kind": self.kind,
            "positions": self.positions,
            "strength": self.strength,
        }


__all__ = ["Intervention", "KINDS", "MAX_EDIT", "RESIDUAL_SITES", "UNIT_TOL"]
