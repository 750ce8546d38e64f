"""LAAI: the objective's gradient, the frozen model, reproducibility, the folded plan, errors,
and (on the default model) convergence and a measured gain over zero-shot."""

import pytest
import torch

import steerfast
from steerfast import PlanError, SteeringPlan
from steerfast.adapters import get_adapter
from steerfast.evaluate import beats
from steerfast.evaluate.fv_tasks import get_format, load_task
from steerfast.evaluate.generation import exact_match, is_match
from steerfast.recipes.laai import demo_batch, fold, injected, laai, objective, resolve_layers, train_deltas
from steerfast.testing import TINY_ARCHS, tiny_model, tiny_tokenizer
from steerfast.tokens import left_padded

DEMOS = [("abc ->", " x"), ("hello ->", " yz"), ("q ->", " w"), ("mnop ->", " rs")]


def random_deltas(model, layers, seed, scale=0.5, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    dim = get_adapter(model).site_dim(model, 0, "attn.heads")
    return {l: (torch.randn(dim, generator=g, dtype=torch.float64) * scale).to(dtype) for l in layers}


def exact_rmsnorm(model):
    """HF's RMSNorm computes in float32 even for a float64 model; finite differences need float64."""
    for mod in model.modules():
        if type(mod).__name__.endswith("RMSNorm"):
            mod.forward = lambda h, mod=mod: (
                mod.weight * h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + mod.variance_epsilon)
            )
    return model


def test_gradient_matches_finite_differences():
    model = exact_rmsnorm(tiny_model("llama", seed=1, dtype=torch.float64))
    batch = demo_batch(tiny_tokenizer(), DEMOS)
    d0, d2 = (d.requires_grad_(True) for d in random_deltas(model, [0, 2], seed=3).values())

    def loss(a, b):
        return objective(model, batch, {0: a, 2: b}, l1=0.01, l2=0.05)[0]

    assert torch.autograd.gradcheck(loss, (d0, d2), eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True)
    # and the gradient is not trivially zero
    g0, g2 = torch.autograd.grad(loss(d0, d2), (d0, d2))
    assert g0.abs().max() > 1e-3 and g2.abs().max() > 1e-3


def test_model_stays_frozen_and_flags_restored():
    model = tiny_model("qwen2", seed=2)
    params = list(model.parameters())
    params[0].requires_grad_(False)  # a mixed state that must come back exactly
    before = [p.requires_grad for p in params]
    weights = [p.detach().clone() for p in params]
    deltas, record = train_deltas(model, tiny_tokenizer(), DEMOS, layers=[1], steps=5, progress=False)
    assert all(p.grad is None for p in params)
    assert [p.requires_grad for p in params] == before
    assert all(torch.equal(p, w) for p, w in zip(params, weights))
    assert record["steps"] == 5 and not deltas[1].requires_grad


def test_seeded_reproducible():
    model = tiny_model("llama", seed=4)
    kw = dict(layers=[0, 2], steps=6, progress=False)
    a, _ = train_deltas(model, tiny_tokenizer(), DEMOS, seed=7, **kw)
    b, _ = train_deltas(model, tiny_tokenizer(), DEMOS, seed=7, **kw)
    c, _ = train_deltas(model, tiny_tokenizer(), DEMOS, seed=8, **kw)
    assert all(torch.equal(a[l], b[l]) for l in a)
    assert any(not torch.equal(a[l], c[l]) for l in a)


def _hooked_vs_patched(model, plan, deltas, rows):
    ids, mask, pos = left_padded(rows)
    select = torch.zeros_like(mask, dtype=torch.bool)
    select[:, -1] = True  # left padded prefill: the prompt's last token
    with torch.no_grad():
        with injected(model, deltas, select):
            hooked = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        with steerfast.patch(model, plan):
            patched = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        plain = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    real = mask.bool()
    return (patched - hooked)[real].abs().max().item(), (plain - hooked)[real].abs().max().item()


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_folded_plan_equals_delta_at_o_proj_input_tiny(arch, tmp_path):
    """The plan laai() returns has the effect training optimised (Δ added at the attention output
    projection's input) on every architecture: post-norm branches (Gemma 2/3, OLMo 2), Granite's
    residual multiplier and GPT-2's transposed Conv1D included."""
    model = tiny_model(arch, seed=5)
    deltas = random_deltas(model, [0, 1, 2], seed=6, dtype=torch.float32)
    plan = SteeringPlan(fold(model, deltas), "laai")
    plan.save(tmp_path / "p.safetensors")
    plan = SteeringPlan.load(tmp_path / "p.safetensors")
    rows = [[5, 9, 17, 33, 2, 7], [40, 41, 42], [90, 12, 13, 14]]
    diff, effect = _hooked_vs_patched(model, plan, deltas, rows)
    assert diff <= 1e-5
    assert effect > 1e-2, "Δ must change the logits"


def test_bad_input_raises_plan_error():
    model = tiny_model("llama", seed=0)
    tok = tiny_tokenizer()
    with pytest.raises(PlanError, match="at least one demonstration"):
        laai(model, tok, [], progress=False)
    with pytest.raises(PlanError, match="tokenizes to nothing"):
        laai(model, tok, [("abc ->", "")], progress=False)
    with pytest.raises(PlanError, match="λ1"):
        laai(model, tok, DEMOS, l1=-0.1, progress=False)
    with pytest.raises(PlanError, match="λ2"):
        laai(model, tok, DEMOS, l2=-1.0, progress=False)
    with pytest.raises(PlanError, match="out of range"):
        laai(model, tok, DEMOS, layers=[7], progress=False)
    with pytest.raises(PlanError, match="steps"):
        laai(model, tok, DEMOS, steps=0, progress=False)
    assert resolve_layers(model, "all") == [0, 1, 2]


def test_match_rule():
    assert is_match(" cold, hot", "cold") and is_match(" cold.\nbig", "cold")
    assert is_match(" Buenos Aires\n", "Buenos Aires") and is_match(" Washington, D.C.", "Washington, D.C.")
    assert not is_match(" Cold", "cold") and not is_match(" colder", "cold")
    assert not is_match("\n\nThe answer", "cold")


def test_formats_keep_the_target_space():
    f = get_format("arrow")
    assert f.zero_shot("hot") + f.target("cold") == "hot -> cold"
    assert f.few_shot([("big", "small"), ("up", "down")], "hot") == "big -> small\nup -> down\nhot ->"


# --- the default model ------------------------------------------------------------------


@pytest.mark.slow
def test_default_model_plan_equals_hook_and_training_converges(default_model):
    model, tok = default_model
    task = load_task("fv_antonym")
    f = get_format()
    demos = [(f.zero_shot(x), f.target(y)) for x, y in task.demos]
    plan = laai(model, tok, demos, layers=[3, 12], steps=8, patience=8, seed=0, progress=False)
    rec = plan.meta["training"]
    assert rec["final_loss"] < rec["initial_loss"]
    assert rec["best_loss"] < 0.8 * rec["initial_loss"]
    assert all(p.grad is None for p in model.parameters())
    # the plan stores W_o Δ only; the same seed and settings give the same Δ to hook in directly
    deltas, _ = train_deltas(model, tok, demos, layers=[3, 12], steps=8, patience=8, seed=0, progress=False)
    rows = [tok(p)["input_ids"] for p, _ in demos[:3]]
    # the fused runtime applies the fp32 plan exactly like the plain-hook baseline
    ids, mask, pos = left_padded(rows)
    with torch.no_grad():
        with steerfast.patch(model, plan):
            patched = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        with steerfast.apply_hooks(model, plan):
            hooked = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    assert (patched - hooked)[mask.bool()].abs().max().item() <= 1e-5
    # folding: Δ at the o_proj input == W_o Δ at its output. Checked in fp64, since in fp32
    # W_o(a+Δ) and W_o a + W_o Δ round differently (1.3e-5 to 1.7e-5 on these logits)
    from steerfast.models import load

    model64, _ = load(dtype=torch.float64)
    deltas64 = {l: d.double() for l, d in deltas.items()}
    plan64 = SteeringPlan(fold(model64, deltas64), "laai")
    diff, effect = _hooked_vs_patched(model64, plan64, deltas64, rows)
    assert diff <= 1e-5, diff
    assert effect > 1e-2


@pytest.mark.slow
def test_default_model_laai_beats_zero_shot(default_model):
    """Re-measured on the one task where our committed results show it (docs/laai_results.md:
    fv_country_capital, seed 0, full test split, 120 items: 10.8% vs 0%; still far below 5-shot ICL).
    On the other three tasks LAAI does not beat zero-shot with this 135M model. Also checked: on its
    own 5 demonstrations the plan makes greedy generation produce the demonstrated outputs, which
    the unsteered model does not."""
    model, tok = default_model
    task = load_task("fv_country_capital")
    f = get_format()
    # λ2 = 1e-3: the setting of the committed table (the default is now 0.1, see recipes/laai.py)
    plan = laai(model, tok, [(f.zero_shot(x), f.target(y)) for x, y in task.demos], l2=1e-3, progress=False)
    for items in (task.test, task.demos):
        prompts, expected = [f.zero_shot(x) for x, _ in items], [y for _, y in items]
        zero, _ = exact_match(model, tok, prompts, expected, progress=False)
        with steerfast.patch(model, plan):
            steered, completions = exact_match(model, tok, prompts, expected, progress=False)
        assert beats(steered, zero), (
            f"LAAI {steered} vs zero-shot {zero} on {len(items)} items: {completions[:8]}"
        )
