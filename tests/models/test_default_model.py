"""ActAdd and CAA on the embedded default model (SmolLM2-135M-Instruct): equivalence, revert, effect."""

import pytest
import torch
from helpers import vader_mean

import steerfast
from steerfast.data import neutral_prompts, sentiment_pairs
from steerfast.recipes import actadd, caa

pytestmark = pytest.mark.slow

PROMPTS = [
    "The weather in the city today",
    "My neighbour told me that the new bridge",
    "After the meeting, the team went",
    "I opened the letter and read that",
]


@pytest.fixture(scope="module")
def plans(default_model):
    model, tok = default_model
    return {
        "actadd": actadd(model, tok, "Love", "Hate", layer=6, coeff=5.0),
        "caa": caa(model, tok, sentiment_pairs()[:40], layer=8, coeff=4.0, progress=False),
    }


def _logits(model, enc):
    pos = (enc["attention_mask"].cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        return model(**enc, position_ids=pos).logits


@pytest.mark.parametrize("method", ["actadd", "caa"])
@pytest.mark.parametrize("batch", [1, 4])
def test_patched_equals_hooks_on_logits(default_model, plans, method, batch):
    model, tok = default_model
    enc = tok(PROMPTS[:batch], return_tensors="pt", padding=True)
    plain = _logits(model, enc)
    with steerfast.patch(model, plans[method]):
        fused = _logits(model, enc)
    with steerfast.apply_hooks(model, plans[method]):
        hooked = _logits(model, enc)
    real = enc["attention_mask"].bool()
    assert (fused - hooked)[real].abs().max().item() <= 1e-5
    assert (fused - plain)[real].abs().max().item() > 0.1
    assert torch.equal(_logits(model, enc), plain)  # reverted exactly


@pytest.mark.parametrize("method", ["actadd", "caa"])
def test_greedy_generation_token_identical(default_model, plans, method):
    model, tok = default_model
    enc = tok(PROMPTS, return_tensors="pt", padding=True)
    kw = dict(max_new_tokens=32, min_new_tokens=32, do_sample=False, pad_token_id=tok.pad_token_id)
    with torch.no_grad():
        plain = model.generate(**enc, **kw)
        with steerfast.patch(model, plans[method]):
            fused = model.generate(**enc, **kw)
        with steerfast.apply_hooks(model, plans[method]):
            hooked = model.generate(**enc, **kw)
        again = model.generate(**enc, **kw)
    assert torch.equal(fused, hooked)
    assert not torch.equal(fused, plain)
    assert torch.equal(again, plain)


def test_left_padded_rows_equal_single_runs(default_model, plans):
    """In fp64: in fp32, HF's own batched-vs-single logits already differ by ~1e-4 on this
    model without any steering (GEMM blocking depends on the batch shape), which would hide
    a position bug below the noise."""
    from steerfast.models import load

    _, tok = default_model
    model64, _ = load(dtype=torch.float64)
    plan = plans["actadd"] + plans["caa"]
    enc = tok(PROMPTS, return_tensors="pt", padding=True)
    singles = [tok([p], return_tensors="pt") for p in PROMPTS]
    with steerfast.patch(model64, plan):  # fp64 activations run the reference ops
        batch = _logits(model64, enc)
        steered = [_logits(model64, one)[0] for one in singles]
    plain = [_logits(model64, one)[0] for one in singles]
    for i, (one, single) in enumerate(zip(singles, steered)):
        n = one["input_ids"].shape[1]
        assert (batch[i, -n:] - single).abs().max().item() <= 1e-5
        assert (single - plain[i]).abs().max().item() > 0.1


def test_actadd_love_hate_moves_sentiment(default_model, plans):
    """VADER (an independent lexicon scorer) over 40 neutral prompts: +c raises, -c lowers."""
    model, tok = default_model
    prompts = neutral_prompts()[:40]
    assert len(prompts) == 40
    base = vader_mean(model, tok, prompts, None)
    up = vader_mean(model, tok, prompts, plans["actadd"].with_strength(5.0))
    down = vader_mean(model, tok, prompts, plans["actadd"].with_strength(-5.0))
    print(f"VADER compound mean: -c {down:.3f}  unsteered {base:.3f}  +c {up:.3f}")
    assert up > base + 0.03
    assert down < base - 0.1
