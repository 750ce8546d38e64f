"""Short greedy completions of the held-out prompts, steered or not (read by the scorer effect
and by the degeneration damage)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import torch

from ..runtime import patch
from ..tokens import left_padded, tokenize_texts


@torch.no_grad()
def greedy(
    model, tokenizer, prompts: Sequence[str], plan=None, max_new_tokens: int = 24, batch_size: int = 32
) -> list[str]:
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rows = tokenize_texts(tokenizer, list(prompts))
    out: list[str] = []
    with patch(model, plan) if plan is not None else nullcontext():
        for s in range(0, len(rows), batch_size):
            ids, mask, _ = left_padded(rows[s : s + batch_size], pad, device)
            gen = model.generate(
                ids,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                min_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad,
                num_beams=1,
                top_p=None,
                top_k=None,
                temperature=None,
            )
            out.extend(tokenizer.batch_decode(gen[:, ids.shape[1] :], skip_special_tokens=True))
    return out
