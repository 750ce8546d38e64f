"""The benchmark's token inputs: random ids clear of the special tokens, and the decode prompt's
length. A leaf: every bench module that needs a prompt (runner, profile, the conditional plan)
imports it from here."""

from __future__ import annotations

import torch

DECODE_PROMPT = 32  # tokens prefilled (untimed) before the timed decode steps


def prompt_ids(model, batch: int, length: int, seed: int) -> torch.Tensor:
    """(batch, length) seeded random token ids from the model's vocabulary."""
    gen = torch.Generator().manual_seed(seed)
    vocab = model.config.vocab_size
    lo = min(100, vocab // 4)  # clear of the special tokens at the start of real vocabs
    return torch.randint(lo, vocab - lo, (batch, length), generator=gen)


__all__ = ["DECODE_PROMPT", "prompt_ids"]
