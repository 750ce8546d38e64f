"""Conditions: a gate decided per request from the prompt's own activations (CAST-like).

A Condition reads the residual stream entering decoder layer `layer` (site "layer.in") over
the prompt's real tokens, reduces it to one number per request and compares it:

    score = c · agg(h[prompt tokens])      agg: "mean" over the prompt, or its "last" token
    on    = score > threshold  (comparator ">")   or   score < threshold  (comparator "<")

`c` is stored normalised (unit vector). A Gate combines one or two conditions ("and" /
"or") and names the interventions of its plan that it gates (`gated`, None = all of them).
The gate is decided once per request, in the prefill (the forward whose past is empty),
and every later forward of the request reuses it. Gated interventions must come after the
read point in the forward (layer >= the conditions' layers, never embed.out) and may only
steer from the prompt's end on (positions prompt_last, last, from_prompt_end): the gate is
known only once the whole prompt has passed the read point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .errors import PlanError

CONDITION_SITES = ("layer.in",)
COMPARATORS = (">", "<")
AGGREGATIONS = ("mean", "last")
GATE_OPS = ("and", "or")
GATED_POSITIONS = ("prompt_last", "last", "from_prompt_end")


@dataclass(frozen=True)
class Condition:
    layer: int
    vector: Tensor
    threshold: float
    comparator: str = ">"
    aggregate: str = "mean"
    site: str = "layer.in"

    def __post_init__(self):
        self.check()
        v = self.vector.detach().reshape(-1).to(torch.float32)
        object.__setattr__(self, "vector", (v / v.norm()).contiguous())
        object.__setattr__(self, "threshold", float(self.threshold))

    def check(self) -> None:
        if not isinstance(self.layer, int) or isinstance(self.layer, bool) or self.layer < 0:
            raise PlanError(f"condition layer must be a non-negative int, got {self.layer!r}")
        if self.site not in CONDITION_SITES:
            raise PlanError(
                f"condition site {self.site!r} is not supported; expected one of {', '.join(CONDITION_SITES)}"
            )
        if self.comparator not in COMPARATORS:
            raise PlanError(f"condition comparator must be '>' or '<', got {self.comparator!r}")
        if self.aggregate not in AGGREGATIONS:
            raise PlanError(f"condition aggregate must be 'mean' or 'last', got {self.aggregate!r}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)):
            raise PlanError(f"condition threshold must be a finite number, got {self.threshold!r}")
        if not math.isfinite(self.threshold):
            raise PlanError(f"condition threshold must be finite, got {self.threshold!r}")
        if not isinstance(self.vector, Tensor) or not self.vector.is_floating_point():
            raise PlanError("condition vector must be a floating-point torch.Tensor of shape (D,)")
        v = self.vector.detach()
        if v.dim() != 1 or v.numel() == 0:
            raise PlanError(f"condition vector must have shape (D,), got {tuple(v.shape)}")
        if not torch.isfinite(v).all() or float(v.norm()) == 0.0:
            raise PlanError("condition vector must be finite and non-zero")

    @property
    def dim(self) -> int:
        return self.vector.shape[0]

    def header(self) -> dict:
        return {
            "layer": self.layer,
            "site": self.site,
            "threshold": self.threshold,
            "comparator": self.comparator,
            "aggregate": self.aggregate,
        }

    def __and__(self, other) -> Gate:
        return Gate((self, _one(other)), "and")

    def __or__(self, other) -> Gate:
        return Gate((self, _one(other)), "or")


def _one(c) -> Condition:
    if not isinstance(c, Condition):
        raise PlanError(f"conditions combine with a Condition, got {type(c).__name__}")
    return c


@dataclass(frozen=True)
class Gate:
    """One or two conditions (combined by `op`) gating the interventions `gated` of a plan
    (indices into plan.interventions; None = every intervention)."""

    conditions: tuple
    op: str = "and"
    gated: tuple | None = None

    def __post_init__(self):
        conds = self.conditions
        if isinstance(conds, Condition):
            conds = (conds,)
        if not isinstance(conds, (tuple, list)) or not 1 <= len(conds) <= 2:
            raise PlanError(f"a gate needs one or two conditions, got {self.conditions!r:.80}")
        object.__setattr__(self, "conditions", tuple(_one(c) for c in conds))
        if self.op not in GATE_OPS:
            raise PlanError(f"gate op must be 'and' or 'or', got {self.op!r}")
        if self.gated is not None:
            g = tuple(self.gated)
            if not g or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in g):
                raise PlanError(f"gated must be a non-empty list of intervention indices, got {self.gated!r}")
            object.__setattr__(self, "gated", tuple(sorted(set(g))))

    @property
    def layer(self) -> int:
        """The latest read point: every gated intervention must come at or after it."""
        return max(c.layer for c in self.conditions)

    def flags(self, n: int) -> list[bool]:
        """Per intervention of an n-intervention plan: whether it is gated."""
        if self.gated is None:
            return [True] * n
        return [i in self.gated for i in range(n)]

    def shifted(self, offset: int, n: int) -> Gate:
        """The same gate for this plan's interventions placed at offset.. in a combined plan."""
        idx = range(n) if self.gated is None else self.gated
        return Gate(self.conditions, self.op, tuple(i + offset for i in idx))

    def header(self) -> dict:
        return {
            "op": self.op,
            "gated": None if self.gated is None else list(self.gated),
            "conditions": [c.header() for c in self.conditions],
        }

    def tensors(self) -> dict[str, Tensor]:
        return {f"condition.{k}": c.vector.cpu().contiguous() for k, c in enumerate(self.conditions)}

    @classmethod
    def from_header(cls, h, tensors: dict) -> Gate:
        if not isinstance(h, dict) or not isinstance(h.get("conditions"), list):
            raise PlanError("header 'condition' must be an object with a 'conditions' list")
        conds = []
        for k, c in enumerate(h["conditions"]):
            if not isinstance(c, dict) or f"condition.{k}" not in tensors:
                raise PlanError(f"condition {k} is malformed or its tensor condition.{k} is missing")
            conds.append(
                Condition(
                    c["layer"],
                    tensors[f"condition.{k}"],
                    c["threshold"],
                    c.get("comparator", ">"),
                    c.get("aggregate", "mean"),
                    c.get("site", "layer.in"),
                )
            )
        return cls(tuple(conds), h.get("op", "and"), h.get("gated"))

    def describe(self) -> str:
        parts = [
            f"(c·{c.aggregate}(h@{c.site} L{c.layer}) {c.comparator} {c.threshold:g})"
            for c in self.conditions
        ]
        which = "all interventions" if self.gated is None else f"interventions {list(self.gated)}"
        return f"  gate: {f' {self.op} '.join(parts)} gates {which}"


def as_gate(condition, gated=None) -> Gate:
    if isinstance(condition, Gate):
        return condition if gated is None else Gate(condition.conditions, condition.op, gated)
    if isinstance(condition, Condition):
        return Gate((condition,), "and", gated)
    raise PlanError(f"a plan's condition must be a Condition or a Gate, got {type(condition).__name__}")


def check_gated(gate: Gate, interventions) -> None:
    """Plan-level rules (no model needed): indices in range, gated positions allowed, order."""
    n = len(interventions)
    if gate.gated is not None and max(gate.gated) >= n:
        raise PlanError(f"gated index {max(gate.gated)} out of range; the plan has {n} interventions")
    for i, (iv, on) in enumerate(zip(interventions, gate.flags(n))):
        if not on:
            continue
        if iv.positions not in GATED_POSITIONS:
            raise PlanError(
                f"intervention {i}: a gated intervention must steer from the prompt's end on "
                f"(positions {', '.join(GATED_POSITIONS)}), got {iv.positions!r}: the gate is "
                "decided only once the whole prompt has been read"
            )
        if iv.site == "embed.out" or iv.layer < gate.layer:
            raise PlanError(
                f"intervention {i} ({iv.site} of layer {iv.layer}) runs before the condition's read "
                f"point (the residual stream entering layer {gate.layer}); a gated intervention "
                f"must be at a layer >= {gate.layer} and not at embed.out"
            )


__all__ = ["Condition", "Gate", "as_gate", "check_gated", "CONDITION_SITES", "GATED_POSITIONS"]
