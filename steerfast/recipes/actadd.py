"""ActAdd (Turner et al., arXiv 2308.10248): a steering vector from one prompt pair.

h_A = h(p+) - h(p-) at the input of layer l, one row per position after right-padding the
shorter prompt with a space token; at inference c·h_A[i] is added to prompt position i < n,
prefill only (front alignment).
"""

from __future__ import annotations

import torch

from ..adapters import residual_input_site
from ..errors import PlanError
from ..plan import Intervention, SteeringPlan, model_hint
from ..tokens import tokenize_texts
from .capture import residual_input


@torch.no_grad()
def actadd(
    model, tokenizer, positive: str, negative: str, layer: int, coeff: float = 5.0, pad_text: str = " "
) -> SteeringPlan:
    for name, text in (("positive", positive), ("negative", negative)):
        if not isinstance(text, str):
            raise PlanError(
                f"ActAdd {name} must be a prompt string, got {type(text).__name__} ({text!r:.60})"
            )
    if not positive or not negative:
        raise PlanError("ActAdd needs two non-empty prompts")
    if not isinstance(layer, int) or isinstance(layer, bool):
        raise PlanError(f"layer must be an int, got {layer!r}")
    if not isinstance(pad_text, str):
        raise PlanError(f"pad_text must be a string, got {type(pad_text).__name__}")
    pos_ids, neg_ids = tokenize_texts(tokenizer, [positive, negative])
    pad = tokenizer(pad_text, add_special_tokens=False)["input_ids"]
    if len(pad) != 1:
        raise PlanError(f"pad text {pad_text!r} must be exactly one token, got {len(pad)}")
    n = max(len(pos_ids), len(neg_ids))
    pos_ids = pos_ids + pad * (n - len(pos_ids))
    neg_ids = neg_ids + pad * (n - len(neg_ids))
    device = next(model.parameters()).device
    ids = torch.tensor([pos_ids, neg_ids], device=device)
    with residual_input(model, layer) as seen:
        model(input_ids=ids, use_cache=False)
    h = seen[0].float()
    diff = (h[0] - h[1]).cpu()  # (n, D)
    site_layer, site = residual_input_site(layer)
    iv = Intervention(site_layer, site, "add", diff, f"prefix:{n}", coeff)
    return SteeringPlan(
        [iv],
        "actadd",
        model_hint(model),
        {"positive": positive, "negative": negative, "layer": layer, "tokens": n},
    )
