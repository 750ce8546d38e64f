"""LaaiConfig: LAAI's settings written once. A config and the same keyword overrides give the
same plan; every bad value is refused when the config is made; the dev candidates are overrides
of the config; the recorded settings are the config's."""

import pytest
import torch

from steerfast import PlanError
from steerfast.recipes.laai import DEFAULTS, LaaiConfig, laai, train_deltas
from steerfast.testing import tiny_model, tiny_tokenizer

DEMOS = [("abc ->", " x"), ("hello ->", " yz"), ("q ->", " w")]


def test_a_config_and_keyword_overrides_make_the_same_plan():
    model, tok = tiny_model("llama", seed=3), tiny_tokenizer()
    by_config = laai(model, tok, DEMOS, LaaiConfig(layers=[0, 2], steps=4, l2=1e-3), seed=5, progress=False)
    by_keywords = laai(model, tok, DEMOS, layers=[0, 2], steps=4, l2=1e-3, seed=5, progress=False)
    # overrides apply on top of a given config too
    mixed = laai(
        model, tok, DEMOS, LaaiConfig(layers=[0, 2], steps=9), steps=4, l2=1e-3, seed=5, progress=False
    )
    for plan in (by_keywords, mixed):
        assert len(plan.interventions) == len(by_config.interventions) == 2
        for a, b in zip(plan.interventions, by_config.interventions):
            assert (a.layer, a.site) == (b.layer, b.site)
            assert torch.equal(a.tensor, b.tensor)
    hyper = by_config.meta["hyper"]
    assert hyper == LaaiConfig(steps=4, l2=1e-3).hyper()
    assert hyper["steps"] == 4 and hyper["l2"] == 1e-3 and hyper["lr"] == DEFAULTS["lr"] == 0.05
    assert "layers" not in hyper and by_config.meta["layers"] == [0, 2]


def test_train_deltas_takes_the_config():
    model, tok = tiny_model("llama", seed=3), tiny_tokenizer()
    a, rec_a = train_deltas(model, tok, DEMOS, config=LaaiConfig(layers=[1], steps=3), seed=2, progress=False)
    b, rec_b = train_deltas(model, tok, DEMOS, layers=[1], steps=3, seed=2, progress=False)
    assert list(a) == list(b) == [1] and torch.equal(a[1], b[1])
    assert rec_a == rec_b and rec_a["steps"] <= 3


@pytest.mark.parametrize(
    "bad, name",
    [
        ({"steps": 0}, "steps"),
        ({"steps": True}, "steps"),
        ({"patience": 1.5}, "patience"),
        ({"lr": 0.0}, "lr"),
        ({"lr": "fast"}, "lr"),
        ({"l1": -1e-3}, "l1"),
        ({"l2": float("nan")}, "l2"),
        ({"min_delta": float("inf")}, "min_delta"),
        ({"init_std": None}, "init_std"),
        ({"survive": -0.1}, "survive"),
    ],
)
def test_bad_settings_are_refused_when_the_config_is_made(bad, name):
    with pytest.raises(PlanError, match=name):
        LaaiConfig(**bad)
    with pytest.raises(PlanError, match=name):
        LaaiConfig().replace(**bad)


def test_unknown_settings_and_configs_of_another_type_are_refused():
    with pytest.raises(TypeError, match="unknown LAAI setting"):
        LaaiConfig().replace(l3=1.0)
    model, tok = tiny_model("llama", seed=3), tiny_tokenizer()
    with pytest.raises(TypeError, match="unknown LAAI setting"):
        laai(model, tok, DEMOS, stepz=3, progress=False)
    with pytest.raises(PlanError, match="config must be a LaaiConfig"):
        laai(model, tok, DEMOS, {"steps": 3}, progress=False)
    with pytest.raises(PlanError, match="seed"):
        laai(model, tok, DEMOS, steps=2, seed="0", progress=False)


def test_the_config_is_frozen_and_replace_leaves_it_as_it_was():
    cfg = LaaiConfig(l2=0.03)
    other = cfg.replace(l2=0.3, steps=7)
    assert (cfg.l2, cfg.steps) == (0.03, 60) and (other.l2, other.steps) == (0.3, 7)
    with pytest.raises(AttributeError):
        cfg.l2 = 1.0  # type: ignore[misc]
    assert LaaiConfig().as_dict() == DEFAULTS
    assert list(DEFAULTS) == list(LaaiConfig.names())
