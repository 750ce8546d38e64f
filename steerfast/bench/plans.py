"""The steering configurations the benchmark measures, as SteeringPlans.

    1layer    one additive vector on mlp.out of the middle layer, every position
              (= the residual stream entering the next layer; what CAA/ActAdd do)
    all-add   one additive vector on mlp.out of every layer, every position
    all-sadi  per layer, two prologue and two epilogue sites:
                attn.heads  scale, 2 whole heads masked, delta 2.0, positions "last"
                attn.out    add,   one vector,                      positions "all"
                mlp.neurons scale, 32 neurons masked,  delta 2.0,   positions "last"
                mlp.out     add,   one vector,                      positions "all"
              (SADI-Head + SADI-Neuron scaling at the steered token, plus additive biases:
               the worst case of the design's four sites, every layer)

Vectors are random (seeded, small norm): values do not change the cost, and the same
vectors go to every variant, so the logits can be compared between them.
"""

from __future__ import annotations

import torch

from ..adapters import get_adapter, head_layout
from ..plan import Intervention, SteeringPlan, model_hint

SITE_CONFIGS = ("1layer", "all-add", "all-sadi")
SADI_HEADS = 2
SADI_NEURONS = 32
SADI_DELTA = 2.0
ADD_SCALE = 0.05


def _vec(gen: torch.Generator, dim: int) -> torch.Tensor:
    return torch.randn(dim, generator=gen) * ADD_SCALE


def middle_layer(model) -> int:
    return get_adapter(model).num_layers(model) // 2


def additive_layers(model, sites: str) -> list[int]:
    n = get_adapter(model).num_layers(model)
    return [middle_layer(model)] if sites == "1layer" else list(range(n))


def additive_vectors(model, sites: str, seed: int = 0) -> dict[int, torch.Tensor]:
    """{layer: vector} of the additive configs (1layer, all-add): added to mlp.out of layer."""
    gen = torch.Generator().manual_seed(seed)
    d = model.config.hidden_size
    return {layer: _vec(gen, d) for layer in additive_layers(model, sites)}


def build_plan(model, sites: str, seed: int = 0) -> SteeringPlan:
    if sites not in SITE_CONFIGS:
        raise ValueError(f"unknown site config {sites!r}; expected one of {SITE_CONFIGS}")
    if sites in ("1layer", "all-add"):
        ivs = [
            Intervention(layer, "mlp.out", "add", v, "all", 1.0)
            for layer, v in additive_vectors(model, sites, seed).items()
        ]
        return SteeringPlan(ivs, f"bench-{sites}", model_hint(model))
    gen = torch.Generator().manual_seed(seed)
    adapter = get_adapter(model)
    heads, head_dim = head_layout(model)
    d = model.config.hidden_size
    ivs = []
    for layer in range(adapter.num_layers(model)):
        inter = adapter.site_dim(model, layer, "mlp.neurons")
        head_mask = torch.zeros(heads * head_dim)
        for h in torch.randperm(heads, generator=gen)[:SADI_HEADS].tolist():
            head_mask[h * head_dim : (h + 1) * head_dim] = 1.0
        neuron_mask = torch.zeros(inter)
        neuron_mask[torch.randperm(inter, generator=gen)[:SADI_NEURONS]] = 1.0
        ivs += [
            Intervention(layer, "attn.heads", "scale", head_mask, "last", SADI_DELTA),
            Intervention(layer, "attn.out", "add", _vec(gen, d), "all", 1.0),
            Intervention(layer, "mlp.neurons", "scale", neuron_mask, "last", SADI_DELTA),
            Intervention(layer, "mlp.out", "add", _vec(gen, d), "all", 1.0),
        ]
    return SteeringPlan(ivs, "bench-all-sadi", model_hint(model))


def site_count(plan: SteeringPlan) -> int:
    return len(plan.interventions)


__all__ = ["SITE_CONFIGS", "build_plan", "additive_vectors", "additive_layers", "middle_layer", "site_count"]
