"""A bank or patch built, loaded or used under torch.inference_mode keeps working outside it,
and gives the same logits as one made outside."""

import pytest
import torch

import steerfast
from steerfast.steered_generation import Steer, generate
from steerfast.testing import random_plan, tiny_model, tiny_tokenizer

IDS = torch.tensor([[5, 9, 12, 7], [0, 0, 11, 6]])
MASK = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])


@pytest.fixture(scope="module")
def setup():
    model = tiny_model("llama", seed=3)
    return model, tiny_tokenizer(), random_plan(model, seed=3)


def _logits(model):
    with torch.no_grad():
        return model(input_ids=IDS, attention_mask=MASK).logits


def test_patch_built_inside_used_and_changed_outside(setup):
    model, _, plan = setup
    with steerfast.patch(model, plan) as h:
        want = _logits(model)
        h.set_strength(2.0)
        want2 = _logits(model)
    with torch.inference_mode():
        h = steerfast.patch(model, plan)
    try:
        assert torch.equal(_logits(model), want)
        h.set_strength(2.0)
        assert torch.equal(_logits(model), want2)
        model.zero_grad()
        model(input_ids=IDS, attention_mask=MASK).logits.sum().backward()  # tables saved for backward
    finally:
        h.revert()


def test_bank_loaded_and_assigned_inside_then_reloaded_outside(setup):
    model, tok, plan = setup
    with torch.inference_mode():
        bank = steerfast.SteeringBank(model, slots=2)
        bank.load(0, plan)
        bank.assign([0, -1])
        inside = _logits(model).clone()
    try:
        assert torch.equal(_logits(model), inside)
        bank.assign([-1, 0])
        bank.load(0, plan.with_strength(3.0))
        bank.assign_all(0)
        _logits(model)
        bank.unload(0)
        texts = generate(model, tok, ["hello", "hi"], [Steer(plan), None], max_new_tokens=3)
    finally:
        bank.revert()
    assert texts == generate(model, tok, ["hello", "hi"], [Steer(plan), None], max_new_tokens=3)


def test_generate_inside_then_outside(setup):
    model, tok, plan = setup
    with torch.inference_mode():
        inside = generate(model, tok, ["hello", "hi"], [Steer(plan), None], max_new_tokens=3)
    assert generate(model, tok, ["hello", "hi"], [Steer(plan), None], max_new_tokens=3) == inside
