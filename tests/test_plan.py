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


def test_with_strength_of_one_intervention_and_patch_handle_set_strength_agree():
    model = tiny_model("llama", seed=2)
    plan = random_plan(model, seed=2)
    one = plan.with_strength(2.5, index=1)
    assert [iv.strength for iv in one.interventions] == [
        2.5 if i == 1 else iv.strength for i, iv in enumerate(plan.interventions)
    ]
    assert all(
        a.tensor.data_ptr() == b.tensor.data_ptr() for a, b in zip(one.interventions, plan.interventions)
    )
    assert [iv.strength for iv in plan.with_strength(-1.0).interventions] == [-1.0] * len(plan.interventions)
    for bad in (len(plan.interventions), -1, 1.0, True):
        with pytest.raises(steerfast.PlanError, match="index must be an int"):
            plan.with_strength(2.0, index=bad)
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        with steerfast.patch(model, plan) as handle:
            handle.set_strength(2.5, index=1)
            assert [iv.strength for iv in handle.plan.interventions] == [
                iv.strength for iv in one.interventions
            ]
            live = model(input_ids=ids).logits
        with steerfast.patch(model, one):
            fresh = model(input_ids=ids).logits
    assert torch.equal(live, fresh)
