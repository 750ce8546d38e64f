"""LAAI's proximal step (heads set to exactly zero), its survivor count, and the dev-set choice
that refuses to make a plan when nothing helps (tiny models: fast)."""

import pytest
import torch

from steerfast import PlanError
from steerfast.recipes.laai import laai, train_deltas
from steerfast.recipes.laai_prox import group_prox_
from steerfast.recipes.laai_select import NoGainError
from steerfast.testing import tiny_model


class CharTok:
    """One id per character (vocab 128), no special tokens."""

    pad_token_id = 0

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": [1 + ord(c) % 126 for c in text]}


WORDS = ["abc", "hello", "q", "mnop", "zz", "kite", "rope", "salt", "tiny", "grid", "vow", "plum"]
DEMOS = [(w + " ->", "x") for w in WORDS[:4]]


def sparse_group_objective(x, y, heads, t1, t2):
    return 0.5 * (x - y).pow(2).sum() + t1 * x.abs().sum() + t2 * x.view(heads, -1).norm(dim=1).sum()


def test_group_prox_is_the_minimiser_and_zeroes_small_heads():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(4 * 8, generator=g, dtype=torch.float64)
    y.view(4, 8)[1] *= 0.05  # a small head: must become exactly zero
    t1, t2 = 0.1, 0.5
    x = group_prox_(y.clone(), 4, t1, t2)
    assert torch.equal(x.view(4, 8)[1], torch.zeros(8, dtype=torch.float64))
    assert (x.view(4, 8).norm(dim=1) > 0).sum() >= 2
    best = sparse_group_objective(x, y, 4, t1, t2)
    for _ in range(200):  # no nearby point does better (the prox is the unique minimiser)
        z = x + 1e-3 * torch.randn(x.shape, generator=g, dtype=torch.float64)
        assert sparse_group_objective(z, y, 4, t1, t2) >= best - 1e-12
    # per-head thresholds: a huge one zeroes only its own head
    x2 = group_prox_(y.clone(), 4, 0.0, torch.tensor([0.0, 0.0, 1e6, 0.0]))
    assert torch.equal(x2.view(4, 8)[2], torch.zeros(8, dtype=torch.float64))
    assert torch.allclose(x2.view(4, 8)[[0, 1, 3]], y.view(4, 8)[[0, 1, 3]])


def test_proximal_training_zeroes_heads_and_the_plan_drops_empty_layers():
    model = tiny_model("llama", seed=4)
    kw = dict(layers="all", steps=25, patience=25, progress=False, seed=0)
    dense, _ = train_deltas(model, CharTok(), DEMOS, l1=0.0, l2=0.0, **kw)
    assert all((d.view(4, -1).norm(dim=1) > 0).all() for d in dense.values())
    # without the proximal step the same penalty only shrinks heads: none is exactly zero
    shrunk, _ = train_deltas(model, CharTok(), DEMOS, l2=0.5, proximal=False, **kw)
    assert all((d.view(4, -1).norm(dim=1) > 0).all() for d in shrunk.values())
    sparse, _ = train_deltas(model, CharTok(), DEMOS, l2=0.25, **kw)
    alive = sum(int((d.view(4, -1).norm(dim=1) > 0).sum()) for d in sparse.values())
    assert 0 < alive < 12, alive
    plan = laai(model, CharTok(), DEMOS, l2=0.25, **kw)
    assert plan.meta["surviving_heads"] == alive and plan.meta["total_heads"] == 12
    assert sorted(iv.layer for iv in plan.interventions) == plan.meta["surviving_layers"]
    with pytest.raises(PlanError, match="zeroed every head"):
        laai(model, CharTok(), DEMOS, l2=1e6, **kw)


def mc_dev(answer_option, n=12):
    return [{"prompt": w + " ->", "options": ["x", "q"], "answer": answer_option} for w in WORDS[:n]]


CANDS = [("dense", {"l2": 1e-3}), ("sparse", {"l2": 0.2}), ("all zeroed", {"l2": 1e3})]
KW = dict(layers="all", steps=20, patience=20, lr=0.1, progress=False, candidates=CANDS)


def test_dev_choice_keeps_a_setting_that_helps():
    """Demos teach 'x'; on dev 'x' is right and the unsteered tiny model mostly prefers 'q'."""
    model = tiny_model("llama", seed=4)
    plan = laai(model, CharTok(), DEMOS, dev=mc_dev(0), **KW)
    sel = plan.meta["selection"]
    assert sel["chosen"] in {"dense", "sparse"} and sel["level"] == pytest.approx(0.05 / 3)
    row = next(r for r in sel["rows"] if r["setting"] == sel["chosen"])
    assert row["dev_correct"] > sel["unsteered_correct"] and row["p"] < 0.05 / 3 and row["ci95"][0] > 0


def test_refuses_when_nothing_helps_on_dev():
    """Same demos, but on dev the right option is 'q': steering towards 'x' can only hurt."""
    model = tiny_model("llama", seed=4)
    with pytest.raises(
        NoGainError,
        match=r"LAAI refused: no setting beat the unsteered model on the 12 dev items.*No plan was made",
    ):
        laai(model, CharTok(), DEMOS, dev=mc_dev(1), **KW)
    assert all(p.grad is None for p in model.parameters())


def test_bad_dev_sets_are_refused():
    model = tiny_model("llama", seed=4)
    for dev, msg in (
        ([], "empty"),
        ([{"prompt": "a"}], "needs prompt, options and answer"),
        ([("a", "b"), {"prompt": "a"}], "not a mix"),
    ):
        with pytest.raises(PlanError, match=msg):
            laai(model, CharTok(), DEMOS, dev=dev, **KW)
    with pytest.raises(PlanError, match="candidates"):
        laai(model, CharTok(), DEMOS, dev=mc_dev(0), **dict(KW, candidates=[]))
