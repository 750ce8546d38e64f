import pytest
import torch

import steerfast
from steerfast.plan import Intervention, SteeringPlan
from steerfast.testing import random_plan, tiny_model


def test_save_load_roundtrip(tmp_path):
    model = tiny_model("llama")
    plan = random_plan(model)
    plan.model = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 3}
    plan.meta = {"note": "x", "n": [1, 2]}
    path = tmp_path / "plan.safetensors"
    plan.save(path)
    back = SteeringPlan.load(path)
    assert back.method == plan.method and back.model == plan.model and back.meta == plan.meta
    assert len(back.interventions) == len(plan.interventions)
    for a, b in zip(plan.interventions, back.interventions):
        assert a.header() == b.header()
        assert torch.equal(a.tensor, b.tensor)
    back.validate(model)


def test_corrupt_and_foreign_files(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all")
    with pytest.raises(steerfast.PlanError, match="not a readable safetensors plan"):
        SteeringPlan.load(junk)
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(steerfast.PlanError, match="no steerfast plan header"):
        SteeringPlan.load(foreign)
    with pytest.raises(steerfast.PlanError, match="no plan file"):
        SteeringPlan.load(tmp_path / "missing.safetensors")
    # truncated real plan
    good = tmp_path / "good.safetensors"
    random_plan(tiny_model("llama")).save(good)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(steerfast.PlanError):
        SteeringPlan.load(cut)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(tensor=torch.tensor([1.0, float("nan")])), "NaN or inf"),
        (dict(tensor=torch.randn(2, 4), positions="prefix:3"), "needs a tensor with 3 row"),
        (dict(tensor=torch.randn(2, 4)), "needs a tensor with 1 row"),
        (dict(site="mlp.middle"), "unknown site"),
        (dict(kind="mul"), "unknown kind"),
        (dict(layer=-1), "non-negative"),
        (dict(positions="prefix:0"), "positive length"),
        (dict(positions="sometimes"), "unknown positions"),
        (dict(strength=float("nan")), "strength must be finite"),
        (dict(tensor=torch.arange(4)), "floating point"),
        (dict(site="embed.out", layer=2), "layer 0"),
    ],
)
def test_bad_interventions(kwargs, match):
    args = dict(layer=0, site="mlp.out", kind="add", tensor=torch.randn(4), positions="all", strength=1.0)
    args.update(kwargs)
    with pytest.raises(steerfast.PlanError, match=match):
        Intervention(**args)


def test_empty_plan():
    with pytest.raises(steerfast.PlanError, match="at least one"):
        SteeringPlan([])


def test_recipe_bad_inputs():
    from steerfast.recipes import actadd, caa
    from steerfast.testing import tiny_tokenizer

    model, tok = tiny_model("llama"), tiny_tokenizer()
    with pytest.raises(steerfast.PlanError, match="at least one"):
        caa(model, tok, [], layer=1)
    with pytest.raises(steerfast.PlanError, match="non-empty"):
        actadd(model, tok, "", "hate", layer=1)
    with pytest.raises(steerfast.PlanError, match="out of range"):
        caa(model, tok, [("good", "bad")], layer=7, progress=False)
    with pytest.raises(steerfast.PlanError, match="tokenizes to nothing"):
        caa(model, tok, [("good", "")], layer=1, progress=False)
    plan = actadd(model, tok, "love it", "hate", layer=1)  # right-padded to equal length
    assert plan.interventions[0].tensor.shape == (7, model.config.hidden_size)
    assert plan.interventions[0].positions == "prefix:7"
