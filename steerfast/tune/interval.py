"""A mean with a 95% bootstrap interval over items (prompts or text chunks)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def bootstrap_mean(values: Sequence[float], n_boot: int = 1000, seed: int = 0) -> dict:
    """{mean, lo, hi}: the percentile bootstrap of the mean, resampling items with replacement."""
    x = torch.as_tensor(list(values), dtype=torch.float64)
    if x.numel() == 0:
        raise ValueError("an interval needs at least one item")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, x.numel(), (n_boot, x.numel()), generator=g)
    means = x[idx].mean(1)
    lo, hi = torch.quantile(means, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return {"mean": float(x.mean()), "lo": lo, "hi": hi}
