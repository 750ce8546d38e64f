"""Gemma 3 270M (real, packaged): a post-norm architecture. Patched == hooks, the residual
sites add to the stream (|Δ residual| linear in the strength), and CAA moves sentiment."""

import pytest
import torch
from helpers import vader_mean

import steerfast
from steerfast.adapters import get_adapter
from steerfast.data import neutral_prompts, sentiment_pairs
from steerfast.plan import Intervention, SteeringPlan
from steerfast.recipes import caa
from steerfast.testing import random_plan

pytestmark = pytest.mark.slow
PROMPTS = [
    "The weather in the city today",
    "My neighbour told me that the new bridge",
    "After the meeting, the team went",
    "I opened the letter and read that",
]
CAA_LAYER, CAA_COEFF = 6, 4.0


@pytest.fixture(scope="module")
def gemma():
    from steerfast.models import load

    model, tok = load("gemma3-270m")
    tok.padding_side = "left"
    return model, tok


@pytest.fixture(scope="module")
def caa_plan(gemma):
    model, tok = gemma
    return caa(model, tok, sentiment_pairs()[:40], layer=CAA_LAYER, coeff=1.0, progress=False)


def _logits(model, enc):
    pos = (enc["attention_mask"].cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        return model(**enc, position_ids=pos).logits


def test_gemma3_is_the_post_norm_architecture(gemma):
    model, _ = gemma
    assert model.config.model_type == "gemma3_text"
    assert get_adapter(model).mlp_out == "post_feedforward_layernorm"


@pytest.mark.parametrize("which", ["caa", "every-site"])
def test_patched_equals_hooks(gemma, caa_plan, which):
    model, tok = gemma
    plan = caa_plan.with_strength(CAA_COEFF) if which == "caa" else random_plan(model, seed=1)
    enc = tok(PROMPTS, return_tensors="pt", padding=True)
    plain = _logits(model, enc)
    with steerfast.patch(model, plan):
        fused = _logits(model, enc)
    with steerfast.apply_hooks(model, plan):
        hooked = _logits(model, enc)
    real = enc["attention_mask"].bool()
    assert (fused - hooked)[real].abs().max().item() <= 1e-5
    assert (fused - plain)[real].abs().max().item() > 0.1
    assert torch.equal(_logits(model, enc), plain)


def test_residual_delta_grows_linearly_with_strength(gemma):
    """The post-norm used to normalise a CAA add away (|Δ| ≈ 880 for every strength)."""
    model, tok = gemma
    vec = torch.randn(model.config.hidden_size, generator=torch.Generator().manual_seed(0))
    layer = get_adapter(model).layer_modules(model)[9]
    seen = []
    h = layer.register_forward_pre_hook(
        lambda m, a, k: seen.append((a[0] if a else k["hidden_states"]).detach().clone()), with_kwargs=True
    )
    enc = tok(PROMPTS[:1], return_tensors="pt")
    try:
        _logits(model, enc)
        base = seen.pop()
        deltas = {}
        for c in (0.25, 1.0, 4.0, 16.0):
            plan = SteeringPlan([Intervention(8, "mlp.out", "add", vec, "all", c)], "probe")
            with steerfast.patch(model, plan):
                _logits(model, enc)
            deltas[c] = (seen.pop() - base).norm(dim=-1).mean().item()
    finally:
        h.remove()
    per_unit = vec.norm().item()
    for c, d in deltas.items():
        assert d == pytest.approx(c * per_unit, rel=1e-3), deltas


def test_caa_moves_sentiment_both_ways(gemma, caa_plan):
    model, tok = gemma
    prompts = neutral_prompts()[:24]
    base = vader_mean(model, tok, prompts, None)
    up = vader_mean(model, tok, prompts, caa_plan.with_strength(CAA_COEFF))
    down = vader_mean(model, tok, prompts, caa_plan.with_strength(-CAA_COEFF))
    print(
        f"Gemma 3 270M CAA layer {CAA_LAYER} c=±{CAA_COEFF}, VADER compound mean over 24 prompts: "
        f"-c {down:.3f}  unsteered {base:.3f}  +c {up:.3f}"
    )
    assert up > base + 0.1
    assert down < base - 0.05
