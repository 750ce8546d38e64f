"""sadi(dev=...): K and s chosen by the paired test on dev, or SadiRefused and no plan."""

import pytest
import torch

from steerfast.evaluate.fast import PrefixScorer
from steerfast.recipes.sadi import DEFAULT_DELTA, SadiScores, mask_plan, sadi, top_k
from steerfast.recipes.sadi_dev import SadiRefused
from steerfast.testing import tiny_model, tiny_tokenizer


def _setup():
    model, tok = tiny_model("llama", num_hidden_layers=3), tiny_tokenizer()
    g = torch.Generator().manual_seed(0)
    L, H = 3, model.config.num_attention_heads
    head_dim = model.config.hidden_size // H
    heads = torch.randn(L, H, generator=g)
    scores = SadiScores(
        {"head": heads, "neuron": torch.randn(L, 8, generator=g), "hidden": torch.randn(L, 8, generator=g)},
        {},
        torch.zeros(L, model.config.hidden_size),
        0,
        head_dim,
    )
    words = ["ab", "cd", "ef", "gh", "ij", "kl", "mn", "op"]
    items = [
        {"prompt": f"{words[i % 8]} {words[(3 * i) % 8]} {i} :", "options": ["x", "y", "z"], "answer": 0}
        for i in range(160)
    ]
    return model, tok, scores, items


def _preds(model, tok, items, plan):
    return [int(s.argmax()) for s in PrefixScorer(model, tok, items, "first").scores(plan)]


def test_refuses_when_nothing_beats_no_steering():
    model, tok, scores, items = _setup()
    # the answers are the unsteered model's own predictions: no steering is at 100%
    base = _preds(model, tok, items, None)
    dev = [dict(it, answer=p) for it, p in zip(items, base)]
    with pytest.raises(SadiRefused, match="beats no steering") as err:
        sadi(model, tok, [], "head", scores=scores, dev=dev, grid=([1, 2], [1.5, 3.0]), scoring="first")
    assert len(err.value.choice.table) == 4 and err.value.choice.params is None


def test_chooses_the_setting_that_helps_on_dev():
    model, tok, scores, items = _setup()
    units = top_k(scores.scores["head"], 2)
    strong = mask_plan(model, "head", units, 9.0)  # s = 10
    base, steered = _preds(model, tok, items, None), _preds(model, tok, items, strong)
    # dev = the items the mask changes, labelled with the steered answer: only it helps
    dev = [dict(it, answer=s) for it, b, s in zip(items, base, steered) if b != s]
    assert len(dev) >= 20, len(dev)
    res = sadi(model, tok, [], "head", scores=scores, dev=dev, grid=([1, 2], [1.5, 10.0]), scoring="first")
    assert res.plan.meta["k"] == 2 and res.plan.meta["delta"] == pytest.approx(9.0)
    assert res.plan.meta["chosen_on_dev"] is True
    assert res.choice.params == {"k": 2, "s": 10.0}


def test_default_without_dev_is_the_safe_strength():
    model, tok, scores, _ = _setup()
    res = sadi(model, tok, [], "head", k=2, scores=scores)
    assert res.plan.meta["delta"] == DEFAULT_DELTA == 0.25
    with pytest.raises(Exception, match="either dev"):
        sadi(model, tok, [], "head", scores=scores, dev=[{}] * 20, delta=1.0)
