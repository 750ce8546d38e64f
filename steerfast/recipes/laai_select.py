"""LAAI's settings chosen on a dev set by a paired test, and a refusal when nothing helps.

`laai(model, tok, demos, dev=...)` lands here. Every candidate setting (overrides of laai's
keyword arguments) is trained on the same demonstrations and scored item by item on dev next
to the unsteered model; evaluate/selection.choose keeps the most accurate candidate among those
that beat no steering (exact McNemar p < alpha / number of candidates, Bonferroni, and a paired
bootstrap interval above 0). With none, `NoGainError` is raised with the dev table in its
message, and no plan is made.

dev is one of:
  - (prompt, target) string pairs, scored by exact match of greedy generation (evaluate/generation.py);
  - multiple-choice items {prompt, options, answer}, scored by option log-likelihood with the
    prefix-cached scorer (evaluate/fast.py, full-option scoring);
  - a callable plan-or-None -> per-item correctness (1-D bool), e.g. PrefixScorer(...).correct.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import PlanError
from ..evaluate.selection import choose
from ..plan import SteeringPlan
from ..runtime.patch import patch
from .checks import check_number
from .laai_config import LaaiConfig
from .laai_train import train_plan

# (name, overrides of the LaaiConfig settings; "seed" too). λ2 is in gradient units (recipes/laai.py); on
# SmolLM2-135M, fv_antonym, the heads kept were 270/270, 129/270, 67/270 and 23/270.
CANDIDATES: tuple[tuple[str, dict], ...] = (
    ("l2=1e-3", {"l2": 1e-3}),
    ("l2=0.03", {"l2": 0.03}),
    ("l2=0.1", {"l2": 0.1}),
    ("l2=0.3", {"l2": 0.3}),
)


class NoGainError(PlanError):
    """No candidate setting beat the unsteered model on dev under the paired test: no plan."""


def dev_scorer(model, tokenizer, dev) -> Callable[[SteeringPlan | None], torch.Tensor]:
    """plan (or None) -> per-item correctness on dev, a 1-D bool tensor."""
    if callable(dev):
        return lambda plan: torch.as_tensor(dev(plan)).bool()
    dev = list(dev)
    if not dev:
        raise PlanError("the dev set is empty")
    if all(isinstance(d, dict) for d in dev):
        from ..evaluate.fast import PrefixScorer

        for d in dev:
            if not {"prompt", "options", "answer"} <= set(d):
                raise PlanError(
                    f"a multiple-choice dev item needs prompt, options and answer; got {sorted(d)}"
                )
        return PrefixScorer(model, tokenizer, dev, "full").correct
    if all(isinstance(d, (tuple, list)) and len(d) == 2 and all(isinstance(x, str) for x in d) for d in dev):
        from ..evaluate.generation import greedy_completions, is_match

        prompts, targets = [p for p, _ in dev], [t for _, t in dev]
        longest = max(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in targets)

        def score_gen(plan):
            def run():
                return greedy_completions(model, tokenizer, prompts, longest + 1, progress=False)

            if plan is None:
                completions = run()
            else:
                with patch(model, plan):
                    completions = run()
            return torch.tensor([is_match(c, t) for c, t in zip(completions, targets)])

        return score_gen
    raise PlanError("dev must be (prompt, target) string pairs or dicts {prompt, options, answer}, not a mix")


def select(
    model,
    tokenizer,
    demos,
    dev,
    config: LaaiConfig,
    seed: int = 0,
    progress: bool = True,
    candidates=None,
    alpha: float = 0.05,
) -> SteeringPlan:
    """The best candidate setting (overrides of `config`) that beats no steering on dev, or NoGainError."""
    check_number(alpha, "alpha", minimum=0.0, strict=True)
    candidates = list(CANDIDATES if candidates is None else candidates)
    if not candidates or not all(
        isinstance(c, tuple) and len(c) == 2 and isinstance(c[1], dict) for c in candidates
    ):
        raise PlanError("candidates must be a non-empty list of (name, overrides dict)")
    score = dev_scorer(model, tokenizer, dev)
    base = score(None)
    scored, plans, failed = [], {}, []
    for name, over in candidates:
        over = dict(over)
        cand_seed = over.pop("seed", seed)
        try:
            plan = train_plan(model, tokenizer, demos, config.replace(**over), cand_seed, progress)
        except PlanError as exc:  # e.g. every head zeroed: nothing to steer with
            failed.append({"setting": name, "error": str(exc)})
            continue
        plans[name] = plan
        scored.append(({"setting": name, "heads": plan.meta["surviving_heads"]}, score(plan)))
    n = int(base.numel())
    if not scored:
        raise NoGainError(f"LAAI refused: no candidate made a plan ({failed}). No plan was made.")
    pick = choose(scored, base, alpha)
    # choose's Bonferroni level counts the candidates it saw; the failed ones count too
    level = alpha / len(candidates)
    if (
        pick.params is not None
        and next(r for r in pick.table if r["params"] == pick.params)["p_mcnemar"] >= level
    ):
        pick.params = None
    record = {
        "dev_items": n,
        "unsteered_correct": int(base.sum()),
        "alpha": alpha,
        "level": level,
        "rows": [
            {
                "setting": r["params"]["setting"],
                "surviving_heads": r["params"]["heads"],
                "dev_correct": round(r["acc_a"] * n),
                "diff": r["diff"],
                "ci95": [r["low"], r["high"]],
                "p": r["p_mcnemar"],
            }
            for r in pick.table
        ]
        + failed,
    }
    if pick.params is None:
        table = "; ".join(
            f"{r['setting']}: " + (r["error"] if "error" in r else f"{r['dev_correct']}/{n} (p={r['p']:.3g})")
            for r in record["rows"]
        )
        raise NoGainError(
            f"LAAI refused: no setting beat the unsteered model on the {n} dev items "
            f"(unsteered {record['unsteered_correct']}/{n}; needed a gain with McNemar p < {level:.3g} "
            f"and a paired interval above 0). {table}. "
            "No plan was made; steering would not help (or would hurt) on this task."
        )
    plan = plans[pick.params["setting"]]
    plan.meta["selection"] = dict(record, chosen=pick.params["setting"])
    return plan


__all__ = ["select", "dev_scorer", "NoGainError", "CANDIDATES"]
