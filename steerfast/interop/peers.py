"""Peers' vectors -> plans, without importing the peers (duck typing and their file formats).

steering-vectors `SteeringVector(layer_activations: {layer: (D,) tensor}, layer_type)`: its
hook adds multiplier·v to the output of module `layer_type` of that layer, at token indices
>= min_token_index (default 0: every token). Output of the decoder block and of the MLP are
the same residual addition (steerfast mlp.out); the attention module's output is attn.out.
The library has no file format of its own: people `torch.save` the object or its dict.

repeng `ControlVector(model_type, directions: {layer: (D,) ndarray})`: ControlModel adds
coeff·v to the output of block `layer`, every token (mlp.out). Its file format is the GGUF
control vector (controlvector.py, convention "repeng").
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import PlanError
from ..plan import SteeringPlan
from .vectors import plan_from_directions

SV_SITES = {"decoder_block": "mlp.out", "mlp": "mlp.out", "self_attn": "attn.out"}
SV_CLASS = "steering_vectors.steering_vector.SteeringVector"


def from_steering_vector(sv, multiplier: float = 1.0, min_token_index: int = 0) -> SteeringPlan:
    """A plan from a steering-vectors SteeringVector (or anything with layer_activations)."""
    acts = getattr(sv, "layer_activations", None)
    if not isinstance(acts, dict):
        raise PlanError(f"{type(sv).__name__} has no layer_activations dict; not a SteeringVector")
    layer_type = getattr(sv, "layer_type", "decoder_block")
    if layer_type not in SV_SITES:
        raise PlanError(
            f"steering-vectors layer_type {layer_type!r} has no steerfast site; supported: "
            f"{', '.join(f'{k} -> {v}' for k, v in SV_SITES.items())}"
        )
    if min_token_index != 0:
        raise PlanError("only min_token_index=0 (every token) maps to a steerfast position policy")
    if any(int(k) < 0 for k in acts):
        raise PlanError("negative layer indices are relative to a model; resolve them before converting")
    site = SV_SITES[layer_type]
    return plan_from_directions(
        acts,
        multiplier,
        "all",
        "steering-vectors",
        {},
        {"steering_vectors": {"layer_type": layer_type}},
        site_of=lambda n: (n, site),
    )


def from_repeng(cv, coeff: float = 1.0) -> SteeringPlan:
    """A plan from a repeng ControlVector (or anything with model_type and directions)."""
    dirs = getattr(cv, "directions", None)
    if not isinstance(dirs, dict):
        raise PlanError(f"{type(cv).__name__} has no directions dict; not a repeng ControlVector")
    model_type = getattr(cv, "model_type", None)
    return plan_from_directions(
        dirs, coeff, "all", "repeng", {"model_type": model_type} if model_type else {}, {"repeng": {}}
    )


class _SteeringVectorState:
    """Stands in for steering_vectors' class while unpickling (only its fields are read)."""

    def __setstate__(self, state):
        self.__dict__.update(state)


def load_steering_vector_file(path: str | Path, multiplier: float = 1.0) -> SteeringPlan:
    """A plan from a torch.save'd SteeringVector, its {"layer_activations", "layer_type"} dict,
    or a bare {layer: tensor} dict. Loaded with weights_only (no code from the file runs)."""
    path = Path(path)
    if not path.is_file():
        raise PlanError(f"no steering-vectors file at {path}")
    try:
        with torch.serialization.safe_globals([(_SteeringVectorState, SV_CLASS)]):
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle / zip errors, or a class we do not allow
        raise PlanError(
            f"{path} is not a readable steering-vectors torch file: {str(exc).splitlines()[0][:200]}"
        ) from exc
    if isinstance(obj, dict) and "layer_activations" in obj:
        obj = _dict_as_sv(obj)
    elif isinstance(obj, dict) and obj and all(isinstance(k, int) for k in obj):
        obj = _dict_as_sv({"layer_activations": obj})
    plan = from_steering_vector(obj, multiplier)
    plan.meta["steering_vectors"]["source"] = str(path)
    return plan


def _dict_as_sv(d: dict) -> _SteeringVectorState:
    sv = _SteeringVectorState()
    sv.__setstate__(
        {"layer_activations": d["layer_activations"], "layer_type": d.get("layer_type", "decoder_block")}
    )
    return sv


__all__ = ["from_steering_vector", "from_repeng", "load_steering_vector_file", "SV_SITES"]
