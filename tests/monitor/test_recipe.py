"""The monitor recipe on a tiny model: a separable concept gives held-out accuracy 1."""

import pytest

from steerfast import PlanError
from steerfast.recipes import monitor
from steerfast.testing import tiny_model, tiny_tokenizer


def test_separable_pairs_give_full_held_out_accuracy():
    model, tok = tiny_model("llama", seed=0), tiny_tokenizer()
    pairs = [(f"{w} zzzz", f"{w} qqqq") for w in ("ab", "cd", "ef", "gh", "ij", "kl", "mn", "op", "qr", "st")]
    fit = monitor(model, tok, pairs, name="z", layers=[1, 2])
    rep = fit.report()
    assert rep["name"] == "z" and rep["layer"] in (1, 2)
    assert rep["test_accuracy"] == 1.0 and rep["dev_accuracy"] == 1.0
    assert sum(rep["pairs"].values()) == 10
    assert fit.monitor.meta["test_accuracy"] == 1.0


def test_bad_input_is_refused():
    model, tok = tiny_model("llama", seed=0), tiny_tokenizer()
    with pytest.raises(PlanError, match="out of range"):
        monitor(model, tok, [("a", "b")] * 5, layers=[9])
    with pytest.raises(PlanError, match=">= 4 pairs"):
        monitor(model, tok, [("a", "b")] * 2)
    with pytest.raises(PlanError, match="pair"):
        monitor(model, tok, "ab")
