"""PrefixScorer (evaluate/fast.py) equals the old two-call path on tiny models, steered or not."""

import pytest
import torch

from steerfast.errors import PlanError
from steerfast.evaluate.fast import PrefixScorer
from steerfast.evaluate.multiple_choice import evaluate
from steerfast.plan import Intervention, SteeringPlan
from steerfast.recipes.sadi import mask_plan
from steerfast.testing import random_plan, tiny_model, tiny_tokenizer

ITEMS = [
    {"prompt": "ab cd e", "options": [" xy", " z", " qrs"], "answer": 0},
    {"prompt": "hello there, x", "options": [" a", " bb", " ccc"], "answer": 2},
    {"prompt": "q", "options": [" yes", " no", " m"], "answer": 1},
    {"prompt": "the long prompt of item four", "options": ["1", "22", "3"], "answer": 1},
]


def _items():
    # prompts need 2+ tokens (the scorer caches all but the last)
    return [dict(it, prompt=it["prompt"] + " .") for it in ITEMS]


@pytest.mark.parametrize("arch", ["llama", "gemma3_text"])
@pytest.mark.parametrize("policy", [None, "prompt_last", "from_prompt_end"])
def test_prefix_scorer_matches_two_call_path(arch, policy):
    model, tok = tiny_model(arch), tiny_tokenizer()
    items = _items()
    plan = None
    if policy:
        plan = random_plan(model, seed=1, policies=(policy,) * 6)
    old = evaluate(model, tok, items, plan, batch_size=3).scores
    sc = PrefixScorer(model, tok, items, "full", batch_size=3)
    new = sc.scores(plan)
    for o, n in zip(old, new):
        assert torch.allclose(torch.tensor(o, dtype=torch.float64), n.double(), atol=1e-4), (o, n)
    # the cache is restored: a second pass gives the same scores
    again = sc.scores(plan)
    assert all(torch.equal(a, b) for a, b in zip(new, again))
    if plan is not None:  # steering changes something, so the test can fail
        base = sc.scores(None)
        assert any((a - b).abs().max() > 1e-4 for a, b in zip(base, new))


def test_first_token_scoring_matches_single_token_path():
    model, tok = tiny_model("llama"), tiny_tokenizer()
    items = [dict(it, options=[o[:2] for o in it["options"]]) for it in _items()]  # " x": 2 chars
    firsts = [dict(it, options=[o[:1] + chr(97 + j) for j, o in enumerate(it["options"])]) for it in items]
    single = [dict(it, options=[o[1] for o in it["options"]]) for it in firsts]
    plan = random_plan(model, seed=2, policies=("prompt_last",) * 6)
    old = evaluate(model, tok, single, plan).scores
    # first-token scoring of " a" etc. reads only " " -> the options' first tokens must differ
    with pytest.raises(ValueError, match="share a first token"):
        PrefixScorer(model, tok, firsts, "first")
    new = PrefixScorer(model, tok, single, "first").scores(plan)
    for o, n in zip(old, new):
        assert torch.allclose(torch.tensor(o, dtype=torch.float64), n.double(), atol=1e-4)


def test_overwrite_semantics_differs_only_downstream():
    model, tok = tiny_model("llama", num_hidden_layers=3), tiny_tokenizer()
    items = _items()
    sc = PrefixScorer(model, tok, items, "full")
    # one layer, the last: the recorded vector equals the in-run one, so both semantics agree
    last = mask_plan(model, "head", [(2, 0), (2, 1)], 2.0)
    a, b = sc.scores(last), sc.scores(last, overwrite=True)
    assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(a, b))
    # a mask at layers 0 and 1: layer 1's input differs between the runs, so they differ
    both = mask_plan(model, "head", [(0, 0), (1, 1), (1, 0)], 2.0)
    a, b = sc.scores(both), sc.scores(both, overwrite=True)
    assert any((x - y).abs().max() > 1e-4 for x, y in zip(a, b))


def test_prefix_scorer_refuses_prompt_changing_plans():
    model, tok = tiny_model("llama"), tiny_tokenizer()
    sc = PrefixScorer(model, tok, _items())
    h = model.config.hidden_size
    plan = SteeringPlan([Intervention(0, "mlp.out", "add", torch.ones(h), "all", 1.0)])
    with pytest.raises(PlanError, match="multiple_choice.evaluate"):
        sc.scores(plan)
