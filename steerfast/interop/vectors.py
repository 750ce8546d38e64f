"""Per-layer residual vectors (one (D,) tensor per block output) <-> steerfast plans.

The common shape of llama.cpp / repeng control vectors and steering-vectors decoder-block
vectors: {block index: vector}, applied at every token times one scale.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from ..errors import PlanError
from ..plan import Intervention, SteeringPlan
from .layers import direction_of, layer_of_direction


def as_vector(value, where: str) -> torch.Tensor:
    """A float32 1-D CPU tensor from a tensor / ndarray / list; PlanError otherwise."""
    if isinstance(value, torch.Tensor):
        t = value.detach().to("cpu")
    elif isinstance(value, (np.ndarray, list, tuple)):
        t = torch.as_tensor(np.asarray(value))
    else:
        raise PlanError(f"{where}: expected a tensor or array, got {type(value).__name__}")
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise PlanError(f"{where}: expected a float vector, got dtype {t.dtype}")
    t = t.to(torch.float32)
    if t.dim() > 1 and all(s == 1 for s in t.shape[:-1]):
        t = t.reshape(-1)  # (1, 1, D) as steering-vectors reshapes them
    if t.dim() != 1 or t.numel() == 0:
        raise PlanError(f"{where}: expected a 1-D vector, got shape {tuple(t.shape)}")
    return t.contiguous()


def plan_from_directions(
    directions: Mapping[int, object],
    strength: float = 1.0,
    positions: str = "all",
    method: str = "controlvector",
    model: dict | None = None,
    meta: dict | None = None,
    site_of=layer_of_direction,
) -> SteeringPlan:
    """One `add` intervention per key (sorted); every vector must have the same size."""
    if not directions:
        raise PlanError("the vector file or object holds no directions")
    ivs, dim = [], None
    for n in sorted(directions):
        if not isinstance(n, (int, np.integer)):
            raise PlanError(f"layer keys must be ints, got {n!r}")
        v = as_vector(directions[n], f"direction {n}")
        if dim is not None and v.numel() != dim:
            raise PlanError(f"direction {n} has size {v.numel()}, the others {dim}")
        dim = v.numel()
        layer, site = site_of(int(n))
        ivs.append(Intervention(layer, site, "add", v, positions, strength))
    return SteeringPlan(ivs, method, dict(model or {}), dict(meta or {}))


def directions_from_plan(plan: SteeringPlan) -> tuple[dict[int, torch.Tensor], float]:
    """{direction index: vector} and the one scale they share.

    When every intervention has the same strength s the vectors are stored unscaled and s is
    returned (the file applied at scale s is the plan); otherwise each vector is pre-scaled by
    its strength and the scale is 1. Duplicate layers are summed, as llama.cpp does.
    """
    for i, iv in enumerate(plan.interventions):
        if iv.kind == "ablate":
            raise PlanError(
                f"intervention {i} ({iv.site} of layer {iv.layer}) is an ablate: a directional "
                "ablation cannot be a control vector (llama.cpp adds one fixed vector per layer; "
                "an ablation subtracts the activation's own component along a direction). "
                "Save the plan as .safetensors and apply it with steerfast"
            )
        if iv.kind != "add":
            raise PlanError(
                f"intervention {i} ({iv.site} of layer {iv.layer}) is a {iv.kind}; "
                "a control vector can only add"
            )
        if iv.entries != 1:
            raise PlanError(
                f"intervention {i} has {iv.entries} rows (positions {iv.positions}); a "
                "control vector holds one vector per layer"
            )
    strengths = {iv.strength for iv in plan.interventions}
    shared = strengths.pop() if len(strengths) == 1 else None
    out: dict[int, torch.Tensor] = {}
    for iv in plan.interventions:
        n = direction_of(iv.layer, iv.site)
        v = iv.tensor[0] if shared is not None else iv.tensor[0] * iv.strength
        out[n] = out[n] + v if n in out else v.clone()
    return out, (shared if shared is not None else 1.0)
