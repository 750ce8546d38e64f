"""Short greedy completions of the held-out prompts, steered or not (read by the scorer effect
and by the degeneration damage): evaluate/generation.py's greedy loop, every completion
`max_new_tokens` long, under the plan."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

from ..evaluate.generation import greedy_completions
from ..runtime import patch


def greedy(
    model, tokenizer, prompts: Sequence[str], plan=None, max_new_tokens: int = 24, batch_size: int = 32
) -> list[str]:
    with patch(model, plan) if plan is not None else nullcontext():
        return greedy_completions(
            model,
            tokenizer,
            prompts,
            max_new_tokens,
            batch_size,
            progress=False,
            min_new_tokens=max_new_tokens,
        )
