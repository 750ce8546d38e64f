"""Adapters for the peer libraries, applying the same additive vector at the same layers.

Both peers add a vector to the *output of decoder block l* (the residual stream after layer
l). steerfast's equivalent is an "add" on `mlp.out` of layer l at every position: the block
output is `h + attn + mlp.out`, so adding v to mlp.out or to the block output differ only by
fp32 rounding order. The equivalence check (`max_abs_diff`) measures exactly that.

Install notes (checked against this project's pins: torch 2.13.0, transformers 5.x, numpy 2):
  steering-vectors 0.12.2 requires transformers<5 (pip would downgrade transformers): install
      with `pip install --no-deps steering-vectors==0.12.2` plus scikit-learn (its import-time
      dependency, which resolves without touching torch or numpy). It works on transformers 5.
  repeng 0.4.0 requires numpy<2 (pip would downgrade numpy): install with
      `pip install --no-deps repeng==0.4.0` plus scikit-learn; its module uses `np.float_`
      (removed in numpy 2) in an annotation at import, so this adapter aliases
      `numpy.float_ = numpy.float64` before importing it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

PEERS = ("steering-vectors", "repeng")


@dataclass
class PeerStatus:
    name: str
    available: bool
    version: str = ""
    reason: str = ""


def _version(dist: str) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return ""


def peer_status(name: str) -> PeerStatus:
    try:
        if name == "steering-vectors":
            import steering_vectors  # noqa: F401
        elif name == "repeng":
            _import_repeng()
        else:
            raise ValueError(f"unknown peer {name!r}")
    except Exception as exc:
        return PeerStatus(name, False, _version(name), f"{type(exc).__name__}: {exc}")
    return PeerStatus(name, True, _version(name))


def _import_repeng():
    import numpy as np

    if not hasattr(np, "float_"):
        with contextlib.suppress(Exception):
            np.float_ = np.float64  # repeng 0.4.0 annotates with np.float_ (numpy < 2 only)
    import repeng

    return repeng


def apply_peer(name: str, model: nn.Module, vectors: dict[int, torch.Tensor]) -> Callable[[], None]:
    """Steer `model` in place with the peer; returns the function that undoes it."""
    dtype = next(model.parameters()).dtype
    if name == "steering-vectors":
        from steering_vectors import SteeringVector

        sv = SteeringVector({l: v.to(dtype) for l, v in vectors.items()}, "decoder_block")
        handle = sv.patch_activations(model, multiplier=1.0)
        return handle.remove
    if name == "repeng":
        repeng = _import_repeng()
        ctrl = repeng.ControlModel(model, list(vectors))
        ctrl.set_raw_control({l: v.to(dtype) for l, v in vectors.items()})
        return lambda: ctrl.unwrap()
    raise ValueError(f"unknown peer {name!r}")


def equivalence(
    name: str, model: nn.Module, ours: nn.Module, vectors: dict[int, torch.Tensor], input_ids: torch.Tensor
) -> float | None:
    """max |logits(peer) - logits(ours)| on `input_ids`; `ours` is already steered by steerfast.

    `model` is an unsteered model (a clone) that the peer steers for the comparison and
    leaves as it found it.
    """
    undo = apply_peer(name, model, vectors)
    try:
        with torch.no_grad():
            a = model(input_ids=input_ids, use_cache=False).logits.float()
    finally:
        undo()
    with torch.no_grad():
        b = ours(input_ids=input_ids, use_cache=False).logits.float()
    return float((a - b).abs().max())


__all__ = ["PEERS", "PeerStatus", "peer_status", "apply_peer", "equivalence"]
