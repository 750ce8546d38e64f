"""CAA (Rimsky et al.): the mean activation difference of many contrastive pairs.

v = mean_i (h(pos_i) - h(neg_i)), read at each text's last token in the residual stream
entering layer l (= the output of layer l-1); at inference c·v is added there at the
prompt's last token and every generated token (positions "from_prompt_end").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..adapters import residual_input_site
from ..errors import PlanError
from ..plan import Intervention, SteeringPlan, model_hint
from .capture import last_token_residual
from .checks import check_batch_size, check_number, check_pairs


def mean_difference(
    model,
    tokenizer,
    pairs: Sequence[tuple[str, str]],
    layer: int,
    batch_size: int = 16,
    progress: bool = True,
) -> torch.Tensor:
    pairs = check_pairs(pairs, "CAA", "(positive, negative) pair")
    check_batch_size(batch_size)
    pos = last_token_residual(
        model, tokenizer, [p for p, _ in pairs], layer, batch_size, "CAA positive", progress
    )
    neg = last_token_residual(
        model, tokenizer, [n for _, n in pairs], layer, batch_size, "CAA negative", progress
    )
    return (pos - neg).mean(0).cpu()


def caa(
    model,
    tokenizer,
    pairs: Sequence[tuple[str, str]],
    layer: int,
    coeff: float = 4.0,
    positions: str = "from_prompt_end",
    batch_size: int = 16,
    progress: bool = True,
) -> SteeringPlan:
    check_number(coeff, "coeff")
    if not isinstance(layer, int) or isinstance(layer, bool):
        raise PlanError(f"layer must be an int, got {layer!r}")
    v = mean_difference(model, tokenizer, pairs, layer, batch_size, progress)
    site_layer, site = residual_input_site(layer)
    iv = Intervention(site_layer, site, "add", v, positions, coeff)
    return SteeringPlan([iv], "caa", model_hint(model), {"layer": layer, "pairs": len(pairs)})
