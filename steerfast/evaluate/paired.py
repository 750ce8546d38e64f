"""Paired tests on per-item correctness (both arms scored on the same items).

mcnemar(a, b)            exact two-sided McNemar test (binomial on the discordant pairs)
paired_bootstrap(a, b)   difference in accuracy (a - b) with a 95% percentile interval and a
                         two-sided bootstrap p-value; `groups` resamples whole groups (items
                         sharing a query word) instead of single items
compare(a, b)            both, as one JSON-ready dict (the unit of every results table)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def _bools(x) -> Tensor:
    t = torch.as_tensor(x)
    if t.dim() != 1:
        raise ValueError(f"per-item correctness must be 1-D, got shape {tuple(t.shape)}")
    return t.bool()


def _check_pair(a, b) -> tuple[Tensor, Tensor]:
    a, b = _bools(a), _bools(b)
    if a.shape != b.shape or a.numel() == 0:
        raise ValueError(
            f"paired arms need the same non-zero number of items, got {a.numel()} and {b.numel()}"
        )
    return a, b


def mcnemar(a, b) -> dict:
    """Exact McNemar: n01 = a right & b wrong, n10 = a wrong & b right; p two-sided."""
    a, b = _check_pair(a, b)
    win = int((a & ~b).sum())
    loss = int((~a & b).sum())
    n = win + loss
    if n == 0:
        return {"wins": 0, "losses": 0, "p": 1.0}
    k = min(win, loss)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return {"wins": win, "losses": loss, "p": min(1.0, 2 * tail)}


def paired_bootstrap(
    a, b, n_boot: int = 2000, seed: int = 0, groups: Sequence | None = None, level: float = 0.95
) -> dict:
    """Accuracy difference a - b (points in [−1, 1]) with a percentile interval and p-value."""
    a = _bools(a)
    b = torch.as_tensor(b).double()  # 0/1, or a mean over several arms (random masks)
    if a.shape != b.shape or a.numel() == 0:
        raise ValueError(
            f"paired arms need the same non-zero number of items, got {a.numel()} and {b.numel()}"
        )
    d = a.double() - b
    g = torch.Generator().manual_seed(seed)
    if groups is None:
        idx = torch.randint(0, d.numel(), (n_boot, d.numel()), generator=g)
        boots = d[idx].mean(1)
    else:
        if len(groups) != d.numel():
            raise ValueError(f"{len(groups)} group labels for {d.numel()} items")
        names = {n: i for i, n in enumerate(dict.fromkeys(groups))}
        gid = torch.tensor([names[x] for x in groups])
        sums = torch.zeros(len(names), dtype=torch.float64).index_add_(0, gid, d)
        counts = torch.zeros(len(names), dtype=torch.float64).index_add_(0, gid, torch.ones_like(d))
        pick = torch.randint(0, len(names), (n_boot, len(names)), generator=g)
        boots = sums[pick].sum(1) / counts[pick].sum(1)
    alpha = (1 - level) / 2
    lo, hi = torch.quantile(boots, torch.tensor([alpha, 1 - alpha], dtype=torch.float64)).tolist()
    # two-sided: how often the bootstrap distribution crosses zero, doubled
    p = min(1.0, 2 * min(float((boots <= 0).double().mean()), float((boots >= 0).double().mean())))
    return {"diff": float(d.mean()), "low": lo, "high": hi, "p": p, "n_boot": n_boot}


def compare(a, b, groups: Sequence | None = None, seed: int = 0, n_boot: int = 2000) -> dict:
    """a vs b on the same items: accuracies, the difference with its interval, both p-values."""
    a, b = _check_pair(a, b)
    boot = paired_bootstrap(a, b, n_boot, seed, groups)
    mc = mcnemar(a, b)
    return {
        "n": a.numel(),
        "acc_a": float(a.double().mean()),
        "acc_b": float(b.double().mean()),
        "diff": boot["diff"],
        "low": boot["low"],
        "high": boot["high"],
        "p_bootstrap": boot["p"],
        "p_mcnemar": mc["p"],
        "wins": mc["wins"],
        "losses": mc["losses"],
    }


def versus_random(a, randoms: Sequence, groups: Sequence | None = None, seed: int = 0) -> dict:
    """a vs several random-mask arms on the same items: the bootstrap of a minus the arms'
    per-item mean accuracy, and McNemar against each arm (how many a beats at p < 0.05)."""
    a = _bools(a)
    arms = torch.stack([_bools(r) for r in randoms])
    boot = paired_bootstrap(a, arms.double().mean(0), seed=seed, groups=groups)
    per = [mcnemar(a, r) for r in arms]
    return {
        "n_masks": len(per),
        "acc_random_mean": float(arms.double().mean()),
        "acc_random_each": [float(r.double().mean()) for r in arms],
        "diff": boot["diff"],
        "low": boot["low"],
        "high": boot["high"],
        "p_bootstrap": boot["p"],
        "beats_masks": sum(m["p"] < 0.05 and m["wins"] > m["losses"] for m in per),
        "loses_to_masks": sum(m["p"] < 0.05 and m["wins"] < m["losses"] for m in per),
        "p_mcnemar_median": sorted(m["p"] for m in per)[len(per) // 2],
    }


def helps(result: dict, alpha: float = 0.05) -> bool:
    """a beats b: a positive difference whose McNemar p < alpha and whose interval excludes 0."""
    return result["diff"] > 0 and result["p_mcnemar"] < alpha and result["low"] > 0


__all__ = ["mcnemar", "paired_bootstrap", "compare", "versus_random", "helps"]
