"""Building the variants of a group: one clone of the model per variant, steered its way.

Clones share every parameter and buffer with the base model (only the module objects are
copied), so each variant can keep its own patch, hooks, compiled graph and KV cache alive
for the whole group, and the timed call does nothing but the forward.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from .. import ops
from ..hooks import apply_hooks
from ..ops import library
from .matrix import parse_variant
from .peers import PEERS, apply_peer, peer_status
from .plans import additive_vectors, build_plan

BANK_SLOTS = 8


def clone_sharing_weights(model: nn.Module) -> nn.Module:
    """A copy of the module tree whose parameters and buffers are the original tensors."""
    memo = {id(t): t for t in list(model.parameters()) + list(model.buffers())}
    return copy.deepcopy(model, memo)


def fused_reason() -> str:
    """'' when the fused CPU ops are usable, else why not."""
    if library.fused_available():
        return ""
    return library.fallback_reason() or "fused ops not available"


@dataclass
class Variant:
    name: str
    kind: str
    sites: str | None
    backend: str | None = None  # ops backend to select before each call
    model: nn.Module | None = None  # what the timed call runs (clone, maybe compiled)
    undo: Callable[[], None] | None = None
    status: str = "ok"  # ok | missing | failed
    reason: str = ""
    info: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def close(self) -> None:
        if self.undo is not None:
            try:
                self.undo()
            finally:
                self.undo = None
        self.model = None


class PlanCache:
    """Plans per (site config, seed) for one model, built once."""

    def __init__(self, model: nn.Module):
        self.model = model
        self._plans: dict = {}

    def plan(self, sites: str, seed: int = 0):
        key = (sites, seed)
        if key not in self._plans:
            self._plans[key] = build_plan(self.model, sites, seed)
        return self._plans[key]


def build_variant(base: nn.Module, name: str, plans: PlanCache, batch: int) -> Variant:
    """Clone `base` and steer the clone as `name` says; failures become a status, not a raise."""
    kind, sites = parse_variant(name)
    v = Variant(name, kind, sites)
    if kind in ("fused", "bank"):
        reason = fused_reason()
        if reason:
            v.status, v.reason = "missing", f"fused ops unavailable: {reason}"
            return v
        v.backend = "fused"
    elif kind == "reference":
        v.backend = "reference"
    if kind in PEERS:
        st = peer_status(kind)
        if not st.available:
            v.status, v.reason = "missing", f"{kind} not importable: {st.reason}"
            return v
        v.info["version"] = st.version
    clone = clone_sharing_weights(base)
    try:
        if kind in ("unsteered", "unsteered#2"):
            pass
        elif kind == "hooks":
            v.undo = apply_hooks(clone, plans.plan(sites)).remove
        elif kind in ("reference", "fused"):
            import steerfast

            handle = steerfast.patch(clone, plans.plan(sites))
            v.undo = handle.revert
            v.info["realisations"] = _realisations(handle.describe())
        elif kind == "bank":
            from steerfast import SteeringBank

            bank = SteeringBank(clone, slots=BANK_SLOTS)
            for slot in range(min(BANK_SLOTS, max(batch, 1))):
                bank.load(slot, plans.plan(sites, seed=slot))
            bank.assign(list(range(batch)) if batch <= BANK_SLOTS else [i % BANK_SLOTS for i in range(batch)])
            v.undo = bank.revert
            v.info["realisations"] = _realisations(bank.describe())
            v.info["slots"] = BANK_SLOTS
            v.info["distinct_slots_per_row"] = batch > 1
        elif kind in PEERS:
            if sites not in ("1layer", "all-add"):
                raise ValueError(f"peers only run the additive configs, not {sites!r}")
            v.undo = apply_peer(kind, clone, additive_vectors(base, sites))
        else:
            raise ValueError(f"unknown variant kind {kind!r}")
    except Exception as exc:
        v.status, v.reason = "failed", f"setup: {type(exc).__name__}: {exc}"
        return v
    v.model = clone
    return v


def _realisations(rows: list[dict]) -> dict:
    """How many patched modules run the fast and the wrapped realisation (docs/architectures.md)."""
    out = {"fast": 0, "wrapped": 0}
    for r in rows:
        out[r["realisation"]] += 1
    return out


def select_backend(v: Variant) -> None:
    if v.backend is not None and ops.get_backend() != v.backend:
        ops.set_backend(v.backend)


__all__ = [
    "Variant",
    "PlanCache",
    "build_variant",
    "clone_sharing_weights",
    "fused_reason",
    "select_backend",
    "BANK_SLOTS",
]
