"""Choosing hyper-parameters on dev by a paired test, and refusing when nothing helps.

`choose(candidates, baseline)` takes each candidate's per-item dev correctness and the
unsteered run's, compares every candidate with the baseline by the exact McNemar test, and
returns the candidate with the highest dev accuracy among those that help at level
alpha / len(candidates) (Bonferroni over the grid: the best of many settings looks
significant by chance otherwise). With none, it returns None and the table of all of them
(so a caller can raise with a clear message: see recipes.sadi.sadi(dev=...)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

from .paired import compare, helps


@dataclass
class Choice:
    params: dict | None  # None: nothing helps on dev
    table: list[dict]  # every candidate: params + the paired comparison with the baseline
    alpha: float

    def describe(self, limit: int = 5) -> str:
        rows = sorted(self.table, key=lambda r: -r["diff"])[:limit]
        return "; ".join(
            f"{r['params']}: {100 * r['acc_a']:.1f}% vs {100 * r['acc_b']:.1f}% "
            f"(diff {100 * r['diff']:+.1f} [{100 * r['low']:+.1f}, {100 * r['high']:+.1f}], "
            f"McNemar p={r['p_mcnemar']:.3g})"
            for r in rows
        )


def choose(
    candidates: Sequence[tuple[dict, Tensor]],
    baseline: Tensor,
    alpha: float = 0.05,
    groups: Sequence | None = None,
) -> Choice:
    if not candidates:
        raise ValueError("no candidates to choose from")
    level = alpha / len(candidates)
    table = []
    for params, correct in candidates:
        r = compare(correct, baseline, groups)
        table.append({"params": params, **r})
    good = [r for r in table if helps(r, level)]
    best = max(good, key=lambda r: r["acc_a"], default=None)  # ties: the earlier grid point
    return Choice(best["params"] if best else None, table, level)


__all__ = ["Choice", "choose"]
