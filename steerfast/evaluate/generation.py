"""Exact match of greedy generation: the shared harness for generation tasks.

Prompts are tokenized like every recipe tokenizes text (`tokenize_texts`), left padded and
batched; each row gets `max_new_tokens` greedy tokens. Whatever plan is patched into the
model while this runs is what gets measured.

The matching rule (`is_match`), case-sensitive throughout:
  1. strip the completion, keep its first line;
  2. keep as many whitespace-separated words as the expected output has
     ("Buenos Aires" -> 2 words, "cold" -> 1);
  3. correct if that equals the stripped expected output, or does once trailing
     punctuation (.,;:!?"') is removed from the completion's side only.
So " cold, hot" and " cold.\n" match "cold"; " Cold" and " colder" do not.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..tokens import batches, left_padded, tokenize_texts
from .stats import Accuracy

TRAILING = ".,;:!?\"'"


def answer_of(completion: str, expected: str) -> str:
    """The part of `completion` that is compared with `expected` (steps 1-2 of the rule)."""
    lines = completion.strip().split("\n")
    words = lines[0].split()
    return " ".join(words[: max(1, len(expected.split()))])


def is_match(completion: str, expected: str) -> bool:
    got, want = answer_of(completion, expected), expected.strip()
    return got == want or got.rstrip(TRAILING) == want


@torch.no_grad()
def greedy_completions(
    model,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int = 8,
    batch_size: int = 32,
    desc: str = "generate",
    progress: bool = True,
    min_new_tokens: int | None = None,
) -> list[str]:
    """The decoded greedy continuation of each prompt (prompt tokens excluded): the one greedy
    loop of the package (tune/completions.py runs it too). `min_new_tokens` keeps a row going
    past EOS (the tune scores completions of one length)."""
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rows = tokenize_texts(tokenizer, list(prompts))
    out: list[str] = []
    for chunk in batches(rows, batch_size, desc, progress):
        ids, mask, _ = left_padded(chunk, pad, device)
        gen = model.generate(
            ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            min_new_tokens=min_new_tokens,
            do_sample=False,
            pad_token_id=pad,
            num_beams=1,
            top_p=None,
            top_k=None,
            temperature=None,
        )
        out.extend(tokenizer.batch_decode(gen[:, ids.shape[1] :], skip_special_tokens=True))
    return out


def exact_match(
    model,
    tokenizer,
    prompts: Sequence[str],
    expected: Sequence[str],
    max_new_tokens: int = 8,
    batch_size: int = 32,
    desc: str = "generate",
    progress: bool = True,
) -> tuple[Accuracy, list[str]]:
    """(Accuracy, completions) of greedy generation against `expected` under `is_match`."""
    if len(prompts) != len(expected):
        raise ValueError(f"{len(prompts)} prompts but {len(expected)} expected outputs")
    completions = greedy_completions(model, tokenizer, prompts, max_new_tokens, batch_size, desc, progress)
    correct = sum(is_match(c, e) for c, e in zip(completions, expected))
    return Accuracy(correct, len(prompts)), completions


__all__ = ["exact_match", "greedy_completions", "is_match", "answer_of"]
