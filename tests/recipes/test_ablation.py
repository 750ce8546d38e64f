"""The ablation recipe: the direction is the normalised mean difference (checked against the
captured activations directly), pairs and two sets agree, the plan ablates it everywhere
or at chosen layers, bad input is refused; the GGUF export refuses ablation; on the default
model, `steerfast make ablation` (tests/cli/test_cli_ablation.py)."""

import pytest
import torch

import steerfast
from steerfast.errors import PlanError
from steerfast.interop import save_plan
from steerfast.recipes import ablation
from steerfast.recipes.capture import last_token_residual
from steerfast.testing import tiny_model, tiny_tokenizer

PAIRS = [("good day", "bad day"), ("I love it", "I hate it"), ("so happy", "so sad")]


@pytest.fixture(scope="module")
def tiny():
    return tiny_model("llama", seed=3), tiny_tokenizer()


def test_direction_is_normalised_mean_difference(tiny):
    model, tok = tiny
    r, plan = ablation(model, tok, PAIRS, layer=1, progress=False)
    hp = last_token_residual(model, tok, [p for p, _ in PAIRS], 1, progress=False).double()
    hn = last_token_residual(model, tok, [n for _, n in PAIRS], 1, progress=False).double()
    want = hp.mean(0) - hn.mean(0)
    assert torch.allclose(r.double(), want / want.norm(), atol=1e-6)
    assert abs(r.double().norm().item() - 1) < 1e-6
    n = model.config.num_hidden_layers
    assert [(iv.layer, iv.site) for iv in plan.interventions] == [(0, "embed.out")] + [
        (layer, site) for layer in range(n) for site in ("attn.out", "mlp.out")
    ]
    assert all(iv.kind == "ablate" and iv.strength == 1.0 for iv in plan.interventions)
    assert plan.method == "ablation" and plan.meta["direction_layer"] == 1


def test_two_sets_equal_pairs_and_chosen_layers(tiny):
    model, tok = tiny
    r_pairs, _ = ablation(model, tok, PAIRS, layer=1, progress=False)
    sets = ([p for p, _ in PAIRS], [n for _, n in PAIRS] + ["bad day"])
    r_sets, plan = ablation(model, tok, sets, layer=1, alpha=0.5, layers=[1], progress=False)
    assert not torch.allclose(r_pairs, r_sets)  # the second set differs by one text
    r_same, _ = ablation(model, tok, (sets[0], sets[1][:-1]), layer=1, progress=False)
    assert torch.allclose(r_pairs, r_same, atol=1e-6)
    assert [(iv.layer, iv.site, iv.strength) for iv in plan.interventions] == [
        (1, "attn.out", 0.5),
        (1, "mlp.out", 0.5),
    ]


def test_plan_removes_direction_at_the_read_layer(tiny):
    model, tok = tiny
    r, plan = ablation(model, tok, PAIRS, layer=1, progress=False)
    texts = [p for p, _ in PAIRS] + [n for _, n in PAIRS]
    with steerfast.patch(model, plan):
        h = last_token_residual(model, tok, texts, 1, progress=False).double()
    assert ((h @ r.double()).abs() <= 1e-5 * h.norm(dim=1)).all()


def test_bad_input(tiny):
    model, tok = tiny
    with pytest.raises(PlanError, match="pair"):
        ablation(model, tok, ["just one text"], layer=1, progress=False)
    with pytest.raises(PlanError, match="first set"):
        ablation(model, tok, ([], ["a", "b", "c"]), layer=1, progress=False)
    with pytest.raises(PlanError, match="same mean"):
        ablation(model, tok, [("same", "same")], layer=1, progress=False)
    with pytest.raises(PlanError, match="alpha"):
        ablation(model, tok, PAIRS, layer=1, alpha=float("nan"), progress=False)


def test_gguf_export_refuses_ablation(tiny, tmp_path):
    model, tok = tiny
    _, plan = ablation(model, tok, PAIRS, layer=1, progress=False)
    with pytest.raises(PlanError, match="cannot be a control vector"):
        save_plan(plan, tmp_path / "a.gguf")
    assert not (tmp_path / "a.gguf").exists()
