"""The demo's latency stop rule: a group stops once every line's bootstrap interval of its
median ratio is within ±rel of the median (after min_rounds), else at max_rounds."""

import random

import pytest

from steerfast.cli.demo_stop import StopRule, half_width, median_interval, ratios
from steerfast.timing import interleaved


def _samples(n, spread, seed=0):
    rng = random.Random(seed)
    base = [1.0 + rng.uniform(-0.01, 0.01) for _ in range(n)]
    return {"base": base, "x": [2.0 * b * (1 + rng.uniform(-spread, spread)) for b in base]}


def test_ratios_and_interval():
    r = ratios({"base": [1.0, 2.0, 0.0], "x": [2.0, 5.0, 1.0]}, "base")
    assert r["x"] == [2.0, 2.5] and r["base"] == [1.0, 1.0]  # a zero-time base round is skipped
    lo, hi = median_interval([1.0] * 7 + [1.1] * 3)
    assert 1.0 <= lo <= hi <= 1.1
    assert half_width([3.0] * 6) == 0.0


def test_stops_when_stable_not_before_min_rounds():
    rule = StopRule("base", rel=0.05, min_rounds=5, max_rounds=30)
    s = _samples(4, 0.001)
    assert not rule(s) and rule.rounds == 4  # stable, but fewer than min_rounds
    assert rule(_samples(5, 0.001)) and rule.stable and rule.rounds == 5
    assert rule.outcome() == "5 rounds (spread stable)"


def test_noisy_group_runs_to_the_cap():
    rule = StopRule("base", rel=0.01, min_rounds=3, max_rounds=8)
    assert not rule(_samples(7, 0.5))
    assert rule(_samples(8, 0.5)) and not rule.stable
    assert "cap reached" in rule.outcome() and "at 8 rounds" in rule.describe()


def test_interleaved_honours_stop():
    calls = []
    rule = StopRule("a", rel=10.0, min_rounds=3, max_rounds=50)  # any spread is stable
    out = interleaved({"a": lambda: calls.append(1), "b": lambda: None}, rounds=50, warmup=1, stop=rule)
    assert len(out["a"]["samples"]) == 3 and len(calls) == 1 + 3


@pytest.mark.parametrize("bad", [dict(rel=0.0), dict(min_rounds=1), dict(min_rounds=9, max_rounds=8)])
def test_bad_rule(bad):
    with pytest.raises(ValueError, match="stop rule"):
        StopRule("a", **bad)
