"""recipes.condition: direction, layer and threshold from two prompt sets; the fitted gate steers
exactly the prompts it classifies as "steer" (tiny random llama, character tokenizer)."""

import pytest
import torch

import steerfast
from steerfast.errors import PlanError
from steerfast.plan import Intervention, SteeringPlan
from steerfast.recipes.condition import best_threshold, condition, prompt_states
from steerfast.testing import tiny_model, tiny_tokenizer

# two "topics" a character model can tell apart: lower-case words vs digits and symbols
STEER = [w * k for w in ("apple", "bread", "cake", "dough", "egg", "fig", "grape", "honey") for k in (1, 2)]
OTHER = [w * k for w in ("1234", "5678", "9090", "#$%&", "4242", "@@11", "7777", "3141") for k in (1, 2)]
TEST_S = ["jam", "kiwi lime", "mango", "nuts oats"]
TEST_O = ["2468", "13579", "%%$$", "8080 66"]


@pytest.fixture(scope="module")
def tiny():
    return tiny_model("llama", seed=21), tiny_tokenizer()


def test_best_threshold_is_the_midpoint_of_the_best_cut():
    tau, acc = best_threshold(torch.tensor([3.0, 4.0, 5.0]), torch.tensor([0.0, 1.0]))
    assert acc == 1.0 and tau == 2.0
    tau, acc = best_threshold(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 0.0]))
    assert acc == 0.75


def test_fit_separates_held_out_prompts_and_gates_exactly_those(tiny):
    model, tok = tiny
    fit = condition(model, tok, STEER, OTHER, test=(TEST_S, TEST_O), seed=1)
    c = fit.condition
    assert abs(float(c.vector.norm()) - 1.0) < 1e-6
    assert fit.dev_accuracy >= 0.9 and fit.test_accuracy is not None
    assert set(fit.per_candidate) == {f"{lay}/{a}" for lay in range(3) for a in ("mean", "last")}
    # the recipe's own scores are the runtime's gate: steered rows are exactly the "on" ones
    scores = prompt_states(model, tok, TEST_S + TEST_O, [c.layer])[(c.layer, c.aggregate)] @ c.vector
    on = [bool(s > c.threshold) for s in scores]
    assert sum(on[:4]) + sum(not g for g in on[4:]) == round(fit.test_accuracy * 8)
    assert any(on) and not all(on)
    v = torch.randn(model.config.hidden_size, generator=torch.Generator().manual_seed(0))
    plan = SteeringPlan([Intervention(2, "mlp.out", "add", v, "from_prompt_end", 4.0)], "t").when(c)
    for text, g in zip(TEST_S + TEST_O, on):
        ids = torch.tensor([tok(text)["input_ids"]])
        with torch.no_grad():
            plain = model(input_ids=ids).logits
            with steerfast.patch(model, plan):
                got = model(input_ids=ids).logits
        assert torch.equal(got, plain) != g


def test_bad_inputs(tiny):
    model, tok = tiny
    with pytest.raises(PlanError, match="steer_prompts"):
        condition(model, tok, [], OTHER)
    with pytest.raises(PlanError, match="layer 5 out of range"):
        condition(model, tok, STEER, OTHER, layers=[5])
    with pytest.raises(PlanError, match="aggregates"):
        condition(model, tok, STEER, OTHER, aggregates=["max"])
    with pytest.raises(PlanError, match="dev_fraction"):
        condition(model, tok, STEER, OTHER, dev_fraction=1.5)
