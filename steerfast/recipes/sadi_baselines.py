"""SADI ablations (paper Table 5): a random mask of the same K, and a fixed steering vector.

random mask:   the same K and δ as SADI, units drawn uniformly (seeded) instead of top-K.
fixed vector:  the same top-K mask, but A' = A + c·(M ⊙ d) with d the calibration mean
               difference of the steered site, instead of scaling the input's own A.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..plan import Intervention, SteeringPlan, model_hint
from .checks import check_number
from .sadi import SITE_OF, SadiScores, _check_element, _check_positions, _masks, mask_plan, top_k


def random_units(scores: Tensor, k: int, seed: int = 0) -> list[tuple[int, int]]:
    """k distinct (layer, unit) drawn uniformly, seeded: the random-mask baseline."""
    top_k(scores, k)  # same validation of k
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(scores.numel(), generator=g)[:k]
    U = scores.shape[1]
    return [(int(i) // U, int(i) % U) for i in idx]


def random_mask(
    model,
    scores: SadiScores,
    element: str,
    k: int,
    delta: float,
    positions: str = "prompt_last",
    seed: int = 0,
) -> SteeringPlan:
    """Ablation: the same K and δ on a seeded random mask."""
    units = random_units(scores.scores[_check_element(element)], k, seed)
    return mask_plan(
        model,
        element,
        units,
        delta,
        positions,
        scores.head_dim,
        f"sadi-{element}-random",
        {"k": k, "seed": seed},
    )


def fixed_vector_plan(
    model,
    scores: SadiScores,
    element: str,
    units: Sequence[tuple[int, int]],
    coeff: float,
    positions: str = "prompt_last",
) -> SteeringPlan:
    """Ablation: add coeff · (M ⊙ mean difference) instead of scaling the input's own values."""
    site = SITE_OF[_check_element(element)]
    coeff = check_number(coeff, "coefficient")
    _check_positions(positions)
    ivs = [
        Intervention(layer, site, "add", m * scores.site_diff[element][layer], positions, coeff)
        for layer, m in sorted(_masks(model, element, units, scores.head_dim).items())
    ]
    return SteeringPlan(
        ivs,
        f"sadi-{element}-fixed",
        model_hint(model),
        {"element": element, "units": [list(u) for u in units], "coeff": coeff, "positions": positions},
    )


__all__ = ["random_units", "random_mask", "fixed_vector_plan"]
