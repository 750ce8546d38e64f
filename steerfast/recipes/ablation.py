"""Directional ablation: the normalised mean-difference direction of two sets of texts and
the plan that removes it from the residual stream.

r = mean(h(pos)) - mean(h(neg)), read at each text's last token in the residual stream
entering `layer` (for pairs this is the mean of the pair differences, as in CAA), then
r̂ = r / |r|. The plan ablates r̂ (y -= alpha (y.r̂) r̂) at embed.out and at attn.out and mlp.out
of every layer (or of `layers`): with alpha = 1 everywhere the stream entering each layer has
no component along r̂ (SteeringPlan.ablate_everywhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from ..errors import PlanError
from ..plan import SteeringPlan
from .capture import last_token_residual
from .checks import check_batch_size, check_number, check_pairs


class Ablation(NamedTuple):
    direction: torch.Tensor  # (D,) fp32, unit norm
    plan: SteeringPlan


def _two_sets(data) -> tuple[list[str], list[str]]:
    """(positive texts, negative texts) from pairs [(pos, neg), ...] or from two sets
    ([pos, ...], [neg, ...]); two sets may differ in size."""
    if (
        isinstance(data, Sequence)
        and not isinstance(data, (str, bytes))
        and len(data) == 2
        and all(isinstance(s, Sequence) and not isinstance(s, (str, bytes)) for s in data)
        and not all(len(s) == 2 and all(isinstance(x, str) for x in s) for s in data)
    ):
        pos, neg = list(data[0]), list(data[1])
        for name, texts in (("first", pos), ("second", neg)):
            if not texts or not all(isinstance(t, str) and t for t in texts):
                raise PlanError(f"ablation: the {name} set must be a non-empty list of non-empty strings")
        return pos, neg
    pairs = check_pairs(data, "ablation", "(positive, negative) pair")
    return [p for p, _ in pairs], [n for _, n in pairs]


def ablation_direction(model, tokenizer, data, layer: int, batch_size: int = 16, progress: bool = True):
    """The unit mean-difference direction (D,) at the input of `layer`."""
    if not isinstance(layer, int) or isinstance(layer, bool):
        raise PlanError(f"layer must be an int, got {layer!r}")
    check_batch_size(batch_size)
    pos, neg = _two_sets(data)
    hp = last_token_residual(model, tokenizer, pos, layer, batch_size, "ablation positive", progress)
    hn = last_token_residual(model, tokenizer, neg, layer, batch_size, "ablation negative", progress)
    r = (hp.double().mean(0) - hn.double().mean(0)).cpu()
    norm = r.norm()
    if not torch.isfinite(norm) or norm == 0:
        raise PlanError(f"ablation: the two sets have the same mean at layer {layer}; no direction")
    return (r / norm).float()


def ablation(
    model,
    tokenizer,
    data,
    layer: int,
    alpha: float = 1.0,
    layers: Sequence[int] | None = None,
    positions: str = "all",
    batch_size: int = 16,
    progress: bool = True,
) -> Ablation:
    """(direction, plan): data is [(pos, neg), ...] pairs or two sets ([pos...], [neg...]);
    the direction is read at `layer`; the plan ablates it at every layer (or `layers`)."""
    check_number(alpha, "alpha")
    r = ablation_direction(model, tokenizer, data, layer, batch_size, progress)
    plan = SteeringPlan.ablate_everywhere(model, r, alpha, layers=layers, positions=positions)
    pos, neg = _two_sets(data)
    plan.method = "ablation"
    plan.meta.update({"direction_layer": layer, "positive": len(pos), "negative": len(neg)})
    return Ablation(r, plan)
