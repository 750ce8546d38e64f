"""`tune`: sweep a plan family over layers x strengths, measure effect and damage on held-out
data, and return the chosen plan (or refuse). The pieces: grid.py, effect.py, damage.py,
completions.py, interval.py, choose.py, plot.py."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from ..errors import PlanError
from ..plan import SteeringPlan
from .choose import DAMAGES, Budget, TuneRefused, choose, combine_signs
from .damage import NeutralText, prompt_tokens_needed
from .effect import SCORERS
from .grid import make_grid
from .measure import measure_cells
from .plot import plot as write_plot

HOW = (
    "steerfast.tune: the largest mean effect among the grid's cells whose damages (KL, perplexity "
    "ratio on neutral text, repeated-3-gram increase of greedy completions, increase of the fraction "
    "of prompts whose completion repeats a 3-gram more than twice) are within the budget "
    "and whose effect's 95% bootstrap interval over held-out prompts lies above 0"
)


@dataclass
class TuneResult:
    plan: SteeringPlan
    layer: int
    strength: float
    table: list[dict]  # every cell (signed strengths), and the merged rows when both_signs
    chosen: dict
    budget: Budget
    seconds: dict


def check_eval_set(eval_set, scorer) -> tuple[list[str], list[dict] | None]:
    if isinstance(eval_set, (str, bytes)) or not isinstance(eval_set, Sequence) or len(eval_set) < 5:
        raise PlanError("eval_set must be a list of at least 5 items {prompt[, positive, negative]}")
    prompts, pairs = [], []
    for i, it in enumerate(eval_set):
        if not isinstance(it, dict) or not isinstance(it.get("prompt"), str) or not it["prompt"].strip():
            raise PlanError(f"eval_set item {i} needs a non-empty string 'prompt', got {it!r}")
        prompts.append(it["prompt"])
        has = [isinstance(it.get(k), str) and bool(it[k].strip()) for k in ("positive", "negative")]
        if any(has) and not all(has):
            raise PlanError(f"eval_set item {i} has only one of positive/negative; give both or neither")
        pairs.append(it if all(has) else None)
    if any(p is None for p in pairs) and any(p is not None for p in pairs):
        raise PlanError("either every eval_set item has positive and negative continuations, or none")
    pairs = None if pairs[0] is None else pairs
    if pairs is None and scorer is None:
        raise PlanError(
            "nothing to measure the effect with: give eval_set items positive/negative continuations, or a scorer"
        )
    return prompts, pairs


def _scorer(scorer):
    if scorer is None or callable(scorer):
        return scorer
    if isinstance(scorer, str) and scorer in SCORERS:
        return SCORERS[scorer]()
    raise PlanError(f"scorer must be a callable or one of {', '.join(SCORERS)}, got {scorer!r}")


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def _checked_budget(make_plan, budget: Budget | None) -> Budget:
    """`budget` (the default Budget for None) once `make_plan` and it have the right types."""
    if not callable(make_plan):
        raise PlanError(f"make_plan must be a callable layer -> SteeringPlan, got {make_plan!r}")
    budget = Budget() if budget is None else budget
    if not isinstance(budget, Budget):
        raise PlanError(f"budget must be a steerfast.tune.Budget, got {budget!r}")
    return budget


def _family_plans(make_plan, layers) -> dict[int, SteeringPlan]:
    """layer -> make_plan(layer), each checked to be a SteeringPlan."""
    base = {}
    for layer in layers:
        plan = make_plan(layer)
        if not isinstance(plan, SteeringPlan):
            raise PlanError(f"make_plan({layer}) returned {type(plan).__name__}, not a SteeringPlan")
        base[layer] = plan
    return base


def _effect_label(scorer, both_signs: bool) -> str:
    """The plot's name for the effect axis."""
    label = (
        "scorer shift of greedy completions"
        if scorer is not None
        else "log-odds shift (positive vs negative)"
    )
    return label + (", worse sign" if both_signs else "")


def _choose_or_refuse(candidates, rows, budget, both_signs, plot, family, effect_label) -> dict:
    """The chosen row of `candidates`; on TuneRefused, the refusal's plot is written and the
    table the refusal carries is the candidates (after the signed rows when both_signs)."""
    try:
        return choose(candidates, budget)
    except TuneRefused as exc:
        if plot:
            write_plot(candidates, plot, budget.kl, None, f"{family}: refused", effect_label)
        exc.table = candidates if not both_signs else rows + candidates
        raise


def tune(
    model,
    tokenizer,
    make_plan: Callable[[int], SteeringPlan],
    eval_set: Sequence[dict],
    layers: Sequence[int] | None = None,
    strengths: Sequence[float] | None = None,
    scorer: Callable[[str], float] | str | None = None,
    budget: Budget | None = None,
    both_signs: bool = False,
    neutral: NeutralText | None = None,
    max_new_tokens: int = 24,
    n_boot: int = 1000,
    seed: int = 0,
    plot: str | None = None,
    family: str = "custom",
    progress: bool = True,
) -> TuneResult:
    """The chosen (layer, strength) of `make_plan`'s family, or TuneRefused (a PlanError).

    make_plan(layer) returns the family's plan at that layer (its strength is replaced by each
    cell's). eval_set: held-out items {prompt} (with `positive` and `negative` continuations for
    the log-odds effect). With `scorer` (a callable text -> float, or "vader") the effect is the
    scorer's shift on greedy completions of `max_new_tokens`, else the log-odds shift.
    both_signs: every strength is also tried negated and a row is the worse of the two (a plan
    meant for +c and -c). See docs/tuning.md.
    """
    budget = _checked_budget(make_plan, budget)
    scorer = _scorer(scorer)
    prompts, pairs = check_eval_set(eval_set, scorer)
    grid = make_grid(model.config.num_hidden_layers, layers, strengths)
    t0 = time.perf_counter()
    base = _family_plans(make_plan, grid.layers)
    signs = (1.0, -1.0) if both_signs else (1.0,)
    cells = [(layer, sign * s) for layer, s in grid.cells() for sign in signs]
    plans = {c: base[c[0]].with_strength(c[1]) for c in cells}
    need = max(prompt_tokens_needed(p) for p in base.values())
    neutral = neutral or NeutralText(tokenizer, prompt=max(8, need))
    t_build = time.perf_counter()
    _say(
        progress,
        f"tune: {len(grid.layers)} layers x {len(grid.strengths)} strengths x {len(signs)} sign(s) = {len(cells)} cells",
    )

    rows, secs = measure_cells(
        model, tokenizer, plans, prompts, pairs, scorer, neutral, max_new_tokens, n_boot, seed, progress
    )
    candidates = combine_signs(rows) if both_signs else rows
    seconds = {"build_plans": t_build - t0, **secs, "total": time.perf_counter() - t0}
    effect_label = _effect_label(scorer, both_signs)
    chosen = _choose_or_refuse(candidates, rows, budget, both_signs, plot, family, effect_label)
    if plot:
        title = (
            f"{family} on {model.config.model_type}: {len(prompts)} prompts, {neutral.tokens} neutral tokens"
        )
        write_plot(candidates, plot, budget.kl, chosen, title, effect_label)
    strength = chosen["strength"]
    plan = base[chosen["layer"]].with_strength(strength)
    plan.meta["tuned"] = {
        "how": HOW,
        "family": family,
        "layer": chosen["layer"],
        "strength": strength,
        "both_signs": both_signs,
        "effect_metric": "scorer" if scorer is not None else "log_odds",
        "grid": {"layers": list(grid.layers), "strengths": list(grid.strengths)},
        "budget": asdict(budget),
        "eval_prompts": len(prompts),
        "neutral_tokens": neutral.tokens,
        "max_new_tokens": max_new_tokens,
        "measured": {k: chosen[k] for k in ("effect", *DAMAGES)},
        "seconds": round(seconds["total"], 1),
    }
    return TuneResult(
        plan, chosen["layer"], strength, rows + (candidates if both_signs else []), chosen, budget, seconds
    )
