"""Plan families a tune sweeps: name -> builder(model, tokenizer, **data) returning make_plan,
a function layer -> SteeringPlan at strength 1 (the tune sets each cell's strength with
SteeringPlan.with_strength). A new family (e.g. ablation) is one more entry in FAMILIES."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import PlanError
from ..plan import SteeringPlan

MakePlan = Callable[[int], SteeringPlan]


def caa_family(model, tokenizer, pairs, **_) -> MakePlan:
    """CAA's vector at every layer from ONE pass over the pairs (the residual mean differences
    recipes.sadi.mean_differences records at each layer: what recipes.caa computes per layer)."""
    from ..adapters import residual_input_site
    from ..plan import Intervention, model_hint
    from ..recipes.sadi import mean_differences

    residual = mean_differences(model, tokenizer, pairs, progress=False).residual

    def make(layer: int) -> SteeringPlan:
        site_layer, site = residual_input_site(layer)
        iv = Intervention(site_layer, site, "add", residual[layer], "from_prompt_end", 1.0)
        return SteeringPlan([iv], "caa", model_hint(model), {"layer": layer, "pairs": len(pairs)})

    return make


def actadd_family(model, tokenizer, positive: str = "Love", negative: str = "Hate", **_) -> MakePlan:
    from ..recipes import actadd

    return lambda layer: actadd(model, tokenizer, positive, negative, layer, coeff=1.0)


def sadi_family(model, tokenizer, pairs, element: str = "head", k: int = 4, **_) -> MakePlan:
    """SADI's top-k units restricted to one layer (its δ is the cell's strength)."""
    from ..recipes.sadi import mask_plan, mean_differences, top_k

    scores = mean_differences(model, tokenizer, pairs, progress=False)
    table = scores.scores[element]
    k = min(k, table.shape[1])

    def make(layer: int) -> SteeringPlan:
        only = torch.full_like(table, float("-inf"))
        only[layer] = table[layer]
        units = top_k(only, k)
        return mask_plan(
            model, element, units, 1.0, head_dim=scores.head_dim, meta={"k": k, "pairs": len(pairs)}
        )

    return make


FAMILIES: dict[str, Callable[..., MakePlan]] = {
    "caa": caa_family,
    "actadd": actadd_family,
    "sadi": sadi_family,
}


def family(name: str) -> Callable[..., MakePlan]:
    if name not in FAMILIES:
        raise PlanError(f"unknown plan family {name!r}; expected one of {', '.join(FAMILIES)}")
    return FAMILIES[name]
