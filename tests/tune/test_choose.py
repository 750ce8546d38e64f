"""The choice rule on synthetic tables: the known best cell wins, refusals say why."""

import pytest

from steerfast.errors import PlanError
from steerfast.tune import Budget, TuneRefused, choose
from steerfast.tune.choose import combine_signs


def _e(mean, half=0.1):
    return {"mean": mean, "lo": mean - half, "hi": mean + half}


def _row(layer, s, effect, kl, ppl=1.0, rep=0.0, half=0.1, loops=0.0):
    return {
        "layer": layer,
        "strength": s,
        "effect": _e(effect, half),
        "kl": _e(kl, 0.01),
        "ppl_ratio": _e(ppl, 0.01),
        "rep": _e(rep, 0.01),
        "loops": _e(loops, 0.02),
    }


def test_largest_effect_within_budget_wins():
    rows = [
        _row(4, 2.0, 0.3, 0.05),
        _row(4, 8.0, 0.9, 0.20),  # the known best: largest effect still within every budget
        _row(4, 12.0, 1.5, 0.60),  # larger effect, KL over budget
        _row(8, 8.0, 1.2, 0.10, ppl=1.5),  # perplexity over budget
        _row(8, 12.0, 1.4, 0.10, rep=0.2),  # degeneration over budget
        _row(8, 2.0, 0.95, 0.01, half=1.0),  # larger mean but the interval reaches below 0
        _row(8, 4.0, 1.1, 0.10, rep=0.01, loops=0.02),  # mean rate fine, one more prompt loops
    ]
    best = choose(rows, Budget(kl=0.25, ppl_ratio=1.3, rep=0.05))
    assert (best["layer"], best["strength"]) == (4, 8.0)


def test_refuses_when_every_cell_is_over_budget():
    rows = [_row(4, 2.0, 0.5, 0.5), _row(4, 4.0, 1.0, 0.9)]
    with pytest.raises(TuneRefused, match="every cell exceeds the damage budget") as info:
        choose(rows, Budget(kl=0.25))
    assert isinstance(info.value, PlanError) and info.value.table == rows


def test_refuses_when_no_effect_beats_zero():
    rows = [_row(4, 2.0, 0.05, 0.01), _row(4, 4.0, -0.3, 0.02)]
    with pytest.raises(TuneRefused, match="above zero beyond its 95% interval"):
        choose(rows, Budget())


def test_both_signs_row_is_the_worse_sign():
    rows = [_row(4, 4.0, 1.0, 0.1), _row(4, -4.0, -0.2, 0.3, rep=0.02)]
    (row,) = combine_signs(rows)
    assert row["effect"]["mean"] == pytest.approx(0.2)  # -(-0.2): the weaker direction
    assert row["kl"]["mean"] == 0.3 and row["rep"]["mean"] == 0.02


def test_looping_budget_binds_where_the_mean_rate_passes():
    """The tail measure: a cell whose mean repeated-3-gram increase is within budget but that
    makes one more of 50 prompts loop is refused at the default budget, allowed at 0.02."""
    rows = [_row(4, 2.0, 0.9, 0.05, rep=0.01, loops=0.02)]
    with pytest.raises(TuneRefused, match="loops <= 0.0"):
        choose(rows, Budget())
    assert choose(rows, Budget(loops=0.02))["layer"] == 4


@pytest.mark.parametrize("bad", [{"kl": -1}, {"ppl_ratio": "x"}, {"rep": float("nan")}, {"loops": -0.1}])
def test_bad_budget(bad):
    with pytest.raises(PlanError, match="budget"):
        Budget(**bad)
