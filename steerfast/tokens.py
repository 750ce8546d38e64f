"""Token rows to model inputs: tokenizing texts, left/right padding, batching.

One home for the padding conventions every layer uses (recipes, evaluation, tests): left
padding puts every row's last token at column -1, which is where `prompt_last` steers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .errors import PlanError


def tokenize_texts(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text (with the tokenizer's special tokens); an empty row is an error."""
    ids = [tokenizer(t, add_special_tokens=True)["input_ids"] for t in texts]
    for text, row in zip(texts, ids):
        if not row:
            raise PlanError(f"text {text!r} tokenizes to nothing")
    return ids


def left_padded(
    rows: Sequence[Sequence[int]], pad_id: int = 0, device="cpu"
) -> tuple[Tensor, Tensor, Tensor]:
    """(input_ids, attention_mask, position_ids), left padded: every row's last token at -1."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :] = torch.as_tensor(r, dtype=torch.long)
        mask[i, width - len(r) :] = 1
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), pos.to(device)


def right_padded(rows: Sequence[Sequence[int]], pad_id: int = 0, device="cpu") -> tuple[Tensor, Tensor]:
    """(input_ids, attention_mask), right padded: every row starts at column 0."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids.to(device), mask.to(device)


def batches(items: Sequence, size: int, desc: str = "batches", progress: bool = True) -> Iterable[Sequence]:
    """Consecutive slices of `size` items, with a tqdm bar unless `progress` is False."""
    starts = range(0, len(items), size)
    for s in tqdm(starts, desc=desc, disable=not progress, leave=False):
        yield items[s : s + size]


__all__ = ["tokenize_texts", "left_padded", "right_padded", "batches"]
