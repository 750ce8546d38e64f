"""The conditional benchmark config `cond-add`: all-add gated per request by a condition.

    cond-add  one additive vector on mlp.out of every layer (as all-add, but from the prompt's
              end on: a gated intervention may not steer prompt tokens before the gate is
              known), gated by a condition on the residual stream entering layer 0 (the
              prompt's last token), whose threshold is the median score of the benchmark's
              decode prompt (runner._ids(seed=2)): at batch 8, 4 rows are gated in, 4 out.

The bank's slot s uses seed s: a different condition (vector and threshold) per slot.
"""

from __future__ import annotations

import torch

from ..conditions import Condition
from ..plan import Intervention, SteeringPlan, model_hint
from ..recipes.capture import residual_input
from .matrix import DECODE_PROMPT
from .plans import additive_vectors

DECODE_BATCH = 8


def conditional_plan(model, seed: int = 0) -> SteeringPlan:
    from .runner import _ids

    ivs = [
        Intervention(layer, "mlp.out", "add", v, "from_prompt_end", 1.0)
        for layer, v in additive_vectors(model, "all-add", seed).items()
    ]
    gen = torch.Generator().manual_seed(1000 + seed)
    c = torch.randn(model.config.hidden_size, generator=gen)
    c = c / c.norm()
    ids = _ids(model, DECODE_BATCH, DECODE_PROMPT, seed=2)
    with torch.no_grad(), residual_input(model, 0) as seen:
        model(input_ids=ids, use_cache=False)
    scores = (seen[0][:, -1].float() @ c).sort().values
    threshold = float((scores[DECODE_BATCH // 2 - 1] + scores[DECODE_BATCH // 2]) / 2)
    cond = Condition(0, c, threshold, ">", "last")
    return SteeringPlan(ivs, "bench-cond-add", model_hint(model)).when(cond)


__all__ = ["conditional_plan"]
