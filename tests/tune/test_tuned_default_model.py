"""On the default model: the shipped tuned sentiment plan (steerfast/data/tuned/, chosen by
`steerfast tune`) moves VADER on the 70 held-out test prompts (never seen by the tune) up for
+c (and down for -c when it was tuned for both signs) beyond the 95% bootstrap interval, with
its degeneration (mean rate and looping completions) within the budget;
today's old untuned demo setting (CAA layer 10, c = ±12) fails the damage budget."""

import pytest

from steerfast.data import sentiment_pairs
from steerfast.tune import Budget
from steerfast.tune.damage import NeutralText
from steerfast.tune.datasets import sentiment_eval
from steerfast.tune.effect import vader_scorer
from steerfast.tune.families import caa_family
from steerfast.tune.measure import measure_cells
from steerfast.tune.shipped import shipped_plan

pytestmark = pytest.mark.slow


def test_tuned_plan_shifts_and_untuned_fails_budget(default_model):
    pytest.importorskip("vaderSentiment", reason="the VADER scorer is a test extra (pyproject [test])")
    model, tok = default_model
    tuned = shipped_plan("caa")
    t = tuned.meta["tuned"]
    c, budget = t["strength"], Budget(**t["budget"])
    old = caa_family(model, tok, sentiment_pairs())(10)
    signs = (1.0, -1.0) if t["both_signs"] else (1.0,)
    plans = {("tuned", s * c): tuned.with_strength(s * c) for s in signs}
    plans |= {("old", 12.0): old.with_strength(12.0), ("old", -12.0): old.with_strength(-12.0)}
    prompts = [e["prompt"] for e in sentiment_eval("test")]
    assert len(prompts) >= 30
    rows, _ = measure_cells(
        model, tok, plans, prompts, None, vader_scorer(), NeutralText(tok), progress=False
    )
    by = {(r["layer"], r["strength"]): r for r in rows}
    up = by[("tuned", c)]
    assert up["effect"]["lo"] > 0, up["effect"]
    assert budget.fits(up), up
    if t["both_signs"]:
        down = by[("tuned", -c)]
        assert down["effect"]["hi"] < 0, down["effect"]
        assert budget.fits(down), down
    assert not (budget.fits(by[("old", 12.0)]) and budget.fits(by[("old", -12.0)]))
