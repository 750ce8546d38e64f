"""SADI's hyper-parameters chosen on a dev set by a paired test, or no plan at all.

`choose_on_dev` scores the dev items unsteered and under every (K, s) of the grid with the
fast prefix-cached scorer, and keeps the best dev accuracy among the settings whose exact
McNemar test against no steering passes at 0.05 / (grid size) (evaluate/selection.py).
When none passes it raises SadiRefused: a user gets no plan rather than one that does not
help (or hurts) on their own data.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import PlanError
from ..evaluate.fast import PrefixScorer
from ..evaluate.selection import Choice, choose

# the study's grid (docs/evaluation.md): s = 1 + δ, the official code's multiplier
DEV_GRID = {
    "head": ([1, 3, 10], [1.25, 1.5, 2.0, 3.0]),
    "neuron": ([20, 100, 500], [1.25, 1.5, 2.0, 3.0]),
    "hidden": ([1, 5, 20], [1.25, 1.5, 2.0]),
}


class SadiRefused(PlanError):
    """No (K, s) of the grid beats no steering on the dev set by the paired test."""

    def __init__(self, message: str, choice: Choice):
        super().__init__(message)
        self.choice = choice


def check_dev(dev: Sequence[dict]) -> list[dict]:
    if not isinstance(dev, Sequence) or isinstance(dev, str) or len(dev) < 20:
        raise PlanError("dev must be a list of at least 20 items {prompt, options, answer}")
    for i, it in enumerate(dev):
        if not isinstance(it, dict) or not {"prompt", "options", "answer"} <= set(it):
            raise PlanError(f"dev item {i} needs prompt, options and answer")
        if not isinstance(it["answer"], int) or not 0 <= it["answer"] < len(it["options"]):
            raise PlanError(f"dev item {i}: answer {it['answer']!r} is not an index of its options")
    return list(dev)


def choose_on_dev(
    model,
    tokenizer,
    dev: Sequence[dict],
    make_plan,
    element: str,
    grid: tuple | None = None,
    scoring: str = "full",
    alpha: float = 0.05,
) -> tuple[int, float, Choice]:
    """(K, δ, choice): make_plan(k, delta) builds the candidate plan of the top-k units."""
    dev = check_dev(dev)
    ks, ss = grid or DEV_GRID[element]
    scorer = PrefixScorer(model, tokenizer, dev, scoring)
    base = scorer.correct()
    cands = []
    for k in ks:
        for s in ss:
            cands.append(({"k": k, "s": s}, scorer.correct(make_plan(k, s - 1.0))))
    choice = choose(cands, base, alpha)
    if choice.params is None:
        raise SadiRefused(
            f"SADI-{element}: no K in {list(ks)} and s in {list(ss)} beats no steering on the "
            f"{len(dev)} dev items (exact McNemar p < {choice.alpha:.2g} after Bonferroni, no steering "
            f"{100 * float(base.double().mean()):.1f}%); no plan returned. Best settings: {choice.describe(3)}",
            choice,
        )
    return choice.params["k"], choice.params["s"] - 1.0, choice


__all__ = ["DEV_GRID", "SadiRefused", "check_dev", "choose_on_dev"]
