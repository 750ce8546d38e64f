"""LAAI's settings chosen on a dev set by a paired test, and a refusal when nothing helps.

`laai(model, tok, demos, dev=...)` lands here. Every candidate setting (overrides of laai's
keyword arguments) is trained on the same demonstrations and scored item by item on dev next
to the unsteered model. A candidate qualifies when it is more accurate than no steering and the
exact McNemar test on the paired (unsteered, steered) outcomes gives p <= alpha / (number of
candidates) (Bonferroni: the best of several is not a discovery by itself). The most accurate
qualifying candidate is returned (ties: the earlier one); with none, `NoGainError` is raised with
the dev table in its message, and no plan is made.

dev is either (prompt, target) pairs, scored by exact match of greedy generation
(evaluate/generation.py), or multiple-choice items {prompt, options, answer}, scored by option
log-likelihood (evaluate/multiple_choice.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from ..errors import PlanError
from ..plan import SteeringPlan

# (name, overrides of laai's keyword arguments). λ2 is in gradient units (recipes/laai.py):
# the grid runs from "every head kept" to "most heads zeroed" on SmolLM2-135M and Qwen2.5-1.5B.
CANDIDATES: tuple[tuple[str, dict], ...] = (
    ("l2=1e-3", {"l2": 1e-3}),  # SmolLM2, fv_antonym: 270/270 heads survive
    ("l2=0.03", {"l2": 0.03}),  # 129/270
    ("l2=0.1", {"l2": 0.1}),  # 67/270
    ("l2=0.3", {"l2": 0.3}),  # 23/270
)


class NoGainError(PlanError):
    """No candidate setting beat the unsteered model on dev under the paired test: no plan."""


def mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts b (only steered right) and
    c (only unsteered right): the binomial(b + c, 1/2) tail, doubled."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


def dev_scorer(model, tokenizer, dev: Sequence) -> Callable[[SteeringPlan | None], list[bool]]:
    """plan (or None) -> per-item correctness on dev."""
    dev = list(dev)
    if not dev:
        raise PlanError("the dev set is empty")
    if all(isinstance(d, dict) for d in dev):
        from ..evaluate.multiple_choice import encode, evaluate

        for d in dev:
            if not {"prompt", "options", "answer"} <= set(d):
                raise PlanError(
                    f"a multiple-choice dev item needs prompt, options and answer; got {sorted(d)}"
                )
        encoded = encode(tokenizer, dev)
        answers = [d["answer"] for d in dev]

        def score_mc(plan):
            preds = evaluate(model, tokenizer, dev, plan, encoded=encoded).predictions
            return [p == a for p, a in zip(preds, answers)]

        return score_mc
    if all(isinstance(d, (tuple, list)) and len(d) == 2 and all(isinstance(x, str) for x in d) for d in dev):
        import steerfast

        from ..evaluate.generation import greedy_completions, is_match

        prompts, targets = [p for p, _ in dev], [t for _, t in dev]
        longest = max(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in targets)

        def score_gen(plan):
            def run():
                return greedy_completions(model, tokenizer, prompts, longest + 1, progress=False)

            if plan is None:
                completions = run()
            else:
                with steerfast.patch(model, plan):
                    completions = run()
            return [is_match(c, t) for c, t in zip(completions, targets)]

        return score_gen
    raise PlanError("dev must be (prompt, target) string pairs or dicts {prompt, options, answer}, not a mix")


def select(model, tokenizer, demos, dev, kw: dict, candidates=None, alpha: float = 0.05) -> SteeringPlan:
    from .checks import check_number
    from .laai import laai

    check_number(alpha, "alpha", minimum=0.0, strict=True)
    candidates = list(CANDIDATES if candidates is None else candidates)
    if not candidates or not all(
        isinstance(c, tuple) and len(c) == 2 and isinstance(c[1], dict) for c in candidates
    ):
        raise PlanError("candidates must be a non-empty list of (name, overrides dict)")
    score = dev_scorer(model, tokenizer, dev)
    base = score(None)
    level = alpha / len(candidates)
    rows, best = [], None
    for name, over in candidates:
        try:
            plan = laai(model, tokenizer, demos, **dict(kw, **over))
        except NoGainError:
            raise
        except PlanError as exc:  # e.g. every head zeroed: nothing to steer with
            rows.append({"setting": name, "overrides": over, "error": str(exc)})
            continue
        got = score(plan)
        b = sum(g and not h for g, h in zip(got, base))
        c = sum(h and not g for g, h in zip(got, base))
        row = {
            "setting": name,
            "overrides": over,
            "dev_correct": sum(got),
            "b_only_steered": b,
            "c_only_unsteered": c,
            "p": mcnemar_p(b, c),
            "surviving_heads": plan.meta["surviving_heads"],
        }
        row["qualifies"] = row["dev_correct"] > sum(base) and row["p"] <= level
        rows.append(row)
        if row["qualifies"] and (best is None or row["dev_correct"] > best[1]["dev_correct"]):
            best = (plan, row)
    n = len(base)
    record = {"dev_items": n, "unsteered_correct": sum(base), "alpha": alpha, "level": level, "rows": rows}
    if best is None:
        table = "; ".join(
            f"{r['setting']}: " + (r["error"] if "error" in r else f"{r['dev_correct']}/{n} (p={r['p']:.3g})")
            for r in rows
        )
        raise NoGainError(
            f"LAAI refused: no setting beat the unsteered model on the {n} dev items "
            f"(unsteered {sum(base)}/{n}; needed more correct and McNemar p <= {level:.3g}). {table}. "
            "No plan was made; steering would not help (or would hurt) on this task."
        )
    plan, row = best
    plan.meta["selection"] = dict(record, chosen=row["setting"])
    return plan


__all__ = ["select", "dev_scorer", "mcnemar_p", "NoGainError", "CANDIDATES"]
