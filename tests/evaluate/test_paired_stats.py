"""Paired tests (evaluate/paired.py) against hand-computed values."""

import math

import pytest
import torch

from steerfast.evaluate.paired import compare, helps, mcnemar, paired_bootstrap


def test_mcnemar_exact_values():
    a = [1] * 10 + [0] * 2 + [1] * 50
    b = [0] * 10 + [1] * 2 + [1] * 50
    r = mcnemar(a, b)
    assert (r["wins"], r["losses"]) == (10, 2)
    expected = 2 * sum(math.comb(12, i) for i in range(3)) / 2**12
    assert r["p"] == pytest.approx(expected)
    assert mcnemar(a, a)["p"] == 1.0


def test_bootstrap_interval_covers_difference_and_groups():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(400, generator=g) < 0.7
    b = torch.rand(400, generator=g) < 0.5
    r = paired_bootstrap(a, b)
    assert r["low"] < r["diff"] < r["high"]
    assert r["diff"] == pytest.approx(float(a.double().mean() - b.double().mean()))
    assert r["p"] < 0.01
    # grouping items in blocks of 4 that share the outcome widens the interval
    a4, b4 = a[:100].repeat_interleave(4), b[:100].repeat_interleave(4)
    flat = paired_bootstrap(a4, b4)
    grouped = paired_bootstrap(a4, b4, groups=[i // 4 for i in range(400)])
    assert grouped["high"] - grouped["low"] > 1.5 * (flat["high"] - flat["low"])


def test_compare_and_helps():
    a = [1] * 30 + [1] * 70
    b = [0] * 30 + [1] * 70
    r = compare(a, b)
    assert r["diff"] == pytest.approx(0.3) and helps(r)
    assert not helps(compare(b, a))
    with pytest.raises(ValueError, match="same non-zero"):
        compare([1, 0], [1])
