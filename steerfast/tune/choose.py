"""The choice rule: the largest effect whose damage stays within the budget, or a refusal.

A cell qualifies when each damage's point estimate is within its budget AND its effect's 95%
bootstrap interval lies above zero; among those the largest mean effect wins. With both signs
tuned, a strength's row is the worse of +s and -s (smaller effect, larger damages).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import PlanError

DAMAGES = ("kl", "ppl_ratio", "rep", "loops")


@dataclass(frozen=True)
class Budget:
    """Damage budgets (defaults measured on the default model, docs/tuning.md)."""

    kl: float = 0.25  # nats per token, KL(unsteered || steered) on neutral text
    ppl_ratio: float = 1.3  # steered / unsteered perplexity of neutral text
    rep: float = 0.05  # increase of the repeated word-3-gram rate of greedy completions
    # increase of the fraction of prompts whose greedy completion loops (repeats a word 3-gram
    # more than twice): the tail that a mean rate hides; 0 = no more looping than unsteered
    loops: float = 0.0

    def __post_init__(self):
        for name, v in asdict(self).items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v == v or v < 0:
                raise PlanError(f"budget {name} must be a non-negative number, got {v!r}")

    def fits(self, row: dict) -> bool:
        return all(row[d]["mean"] <= getattr(self, d) for d in DAMAGES)


class TuneRefused(PlanError):
    """No cell of the grid beats zero effect beyond its interval within the damage budget."""

    def __init__(self, message: str, table: list[dict], result=None):
        super().__init__(message)
        self.table = table
        self.result = result


def combine_signs(rows: list[dict]) -> list[dict]:
    """Rows of +s and -s merged: the effect along the sign (negated for -s), worst of the two."""
    by = {(r["layer"], r["strength"]): r for r in rows}
    out = []
    for (layer, s), pos in sorted(by.items()):
        if s <= 0 or (layer, -s) not in by:
            continue
        neg = by[(layer, -s)]
        flip = {"mean": -neg["effect"]["mean"], "lo": -neg["effect"]["hi"], "hi": -neg["effect"]["lo"]}
        row = {"layer": layer, "strength": s, "signs": "both"}
        row["effect"] = min(pos["effect"], flip, key=lambda e: e["mean"])
        for d in DAMAGES:
            row[d] = max(pos[d], neg[d], key=lambda e: e["mean"])
        out.append(row)
    return out


def choose(rows: list[dict], budget: Budget) -> dict:
    """The winning row, or TuneRefused saying what was closest."""
    ok = [r for r in rows if budget.fits(r) and r["effect"]["lo"] > 0]
    if ok:
        return max(ok, key=lambda r: r["effect"]["mean"])
    fits = [r for r in rows if budget.fits(r)]
    if not fits:
        best = min(rows, key=lambda r: r["kl"]["mean"])
        why = (
            f"every cell exceeds the damage budget (kl <= {budget.kl}, ppl_ratio <= {budget.ppl_ratio}, "
            f"rep <= {budget.rep}, loops <= {budget.loops}); the least damaging, layer {best['layer']} "
            f"strength {best['strength']:g}, has kl {best['kl']['mean']:.3f}, ppl_ratio "
            f"{best['ppl_ratio']['mean']:.3f}, rep {best['rep']['mean']:+.3f}, loops {best['loops']['mean']:+.3f}"
        )
    else:
        best = max(fits, key=lambda r: r["effect"]["lo"])
        e = best["effect"]
        why = (
            f"no cell within the damage budget has an effect above zero beyond its 95% interval; the best, "
            f"layer {best['layer']} strength {best['strength']:g}, has effect {e['mean']:+.3f} [{e['lo']:+.3f}, {e['hi']:+.3f}]"
        )
    raise TuneRefused(f"tune refused: {why}", rows)
