"""kind "ablate" in the runtime: patched == hooks on every tiny architecture (prefill with
padding, generate with Dynamic and Static caches), the bank with a distinct slot per row,
torch.compile, composition with scale/add in plan order, all-layer ablation removing the
direction from every layer's input, and exact revert."""

import pytest
import torch
from helpers import unit
from transformers import StaticCache

import steerfast
from steerfast.adapters import get_adapter
from steerfast.errors import PlanError
from steerfast.plan import Intervention, SteeringPlan, describe
from steerfast.runtime.bank import SteeringBank
from steerfast.testing import TINY_ARCHS, tiny_model
from steerfast.tokens import left_padded

ROWS = [[5, 9, 17, 33, 2, 7, 11, 64, 3], [40, 41, 42, 43], [7, 7, 100], [90, 12, 13, 14, 15, 16, 17]]


def logits(model, ids, mask, pos=None):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, position_ids=pos).logits


def mixed_plan(model, seed=0):
    """ablate, scale and add interleaved on the residual sites, several positions and
    strengths (alpha 1, 0.5, 2): every lane split of runtime/lanes.py is exercised."""
    d = model.config.hidden_size
    g = torch.Generator().manual_seed(seed)
    r1, r2 = unit(d, seed + 1), unit(d, seed + 2)
    ivs = [
        Intervention(0, "embed.out", "ablate", r1, "all", 1.0),
        Intervention(0, "attn.out", "add", torch.randn(d, generator=g), "from_prompt_end", 0.7),
        Intervention(0, "attn.out", "ablate", r1, "from_prompt_end", 0.5),
        Intervention(0, "mlp.out", "scale", torch.rand(d, generator=g), "all", 0.3),
        Intervention(0, "mlp.out", "ablate", r2, "all", 2.0),
        Intervention(0, "mlp.out", "add", torch.randn(d, generator=g), "all", 0.4),
        Intervention(1, "mlp.out", "ablate", r1, "last", 1.0),
        Intervention(1, "attn.out", "ablate", r2, "prompt_last", 1.0),
    ]
    return SteeringPlan(ivs, "mixed")


@pytest.fixture(scope="module", params=TINY_ARCHS)
def arch_model(request):
    return request.param, tiny_model(request.param, seed=11)


def test_patched_equals_hooks_prefill_padded(arch_model):
    arch, model = arch_model
    ids, mask, pos = left_padded(ROWS)
    real = mask.bool()
    base = logits(model, ids, mask, pos)
    plan = mixed_plan(model)
    with steerfast.patch(model, plan):
        fused = logits(model, ids, mask, pos)
    with steerfast.apply_hooks(model, plan):
        hooked = logits(model, ids, mask, pos)
    assert (fused - hooked)[real].abs().max().item() <= 1e-5, arch
    assert (fused - base)[real].abs().max().item() > 1e-3, "the plan must change the logits"
    assert torch.equal(logits(model, ids, mask, pos), base), "revert restores the model exactly"


def test_generate_dynamic_and_static_cache(arch_model):
    arch, model = arch_model
    plan = mixed_plan(model, seed=3)
    ids, mask, _ = left_padded(ROWS)
    n = 6

    def run(cache):
        kw = dict(attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)
        kw.update(output_logits=True, return_dict_in_generate=True)
        if cache == "static":
            kw["past_key_values"] = StaticCache(config=model.config, max_cache_len=ids.shape[1] + n)
        with torch.no_grad():
            return model.generate(ids, **kw)

    for cache in ("dynamic", "static"):
        with steerfast.patch(model, plan):
            fused = run(cache)
        with steerfast.apply_hooks(model, plan):
            hooked = run(cache)
        assert torch.equal(fused.sequences, hooked.sequences), (arch, cache)
        for a, b in zip(fused.logits, hooked.logits):
            assert (a - b).abs().max().item() <= 1e-5, (arch, cache)


def _layer_inputs(model, fn):
    """Run fn() with forward pre-hooks recording every decoder layer's input stream."""
    seen = []

    def pre(mod, args, kwargs):
        seen.append((args[0] if args else kwargs["hidden_states"]).detach().clone())

    handles = [
        m.register_forward_pre_hook(pre, with_kwargs=True) for m in get_adapter(model).layer_modules(model)
    ]
    try:
        fn()
    finally:
        for h in handles:
            h.remove()
    return seen


def test_ablate_everywhere_removes_direction_from_every_layer_input(arch_model):
    arch, model = arch_model
    ids, mask, pos = left_padded(ROWS)
    real = mask.bool()
    r = unit(model.config.hidden_size, 7)
    plan = SteeringPlan.ablate_everywhere(model, r * 3.0)  # normalised by the call
    before = _layer_inputs(model, lambda: logits(model, ids, mask, pos))
    with steerfast.patch(model, plan):
        after = _layer_inputs(model, lambda: logits(model, ids, mask, pos))
    assert len(after) == get_adapter(model).num_layers(model)
    for layer, (h0, h) in enumerate(zip(before, after)):
        comp = (h.double() @ r.double())[real].abs()
        norm = h.double().norm(dim=-1)[real]
        assert (comp <= 1e-5 * norm).all(), (arch, layer, (comp / norm).max().item())
        assert ((h0.double() @ r.double())[real].abs() > 1e-3 * h0.double().norm(dim=-1)[real]).any()


def test_bank_distinct_slots_prefill_and_decode():
    model = tiny_model("llama", seed=2)
    ids, mask, _ = left_padded(ROWS)
    plans = [
        mixed_plan(model, 0),
        SteeringPlan.ablate_everywhere(model, unit(model.config.hidden_size, 9), 0.5),
    ]
    row_slots = [0, 1, -1, 0]

    def gen():
        with torch.no_grad():
            out = model.generate(
                ids,
                attention_mask=mask,
                max_new_tokens=5,
                min_new_tokens=5,
                do_sample=False,
                pad_token_id=0,
                output_logits=True,
                return_dict_in_generate=True,
            )
        return out

    want = []
    for i, s in enumerate(row_slots):
        if s < 0:
            want.append(gen().logits)
            continue
        with steerfast.apply_hooks(model, plans[s]):
            want.append(gen().logits)
    bank = SteeringBank(model, slots=2)
    try:
        bank.load_all({0: plans[0], 1: plans[1]})
        bank.assign(row_slots)
        got = gen().logits
    finally:
        bank.revert()
    for i in range(len(row_slots)):
        for step, (g, w) in enumerate(zip(got, want[i])):
            assert (g[i] - w[i]).abs().max().item() <= 1e-5, (i, step)


def test_compiled_equals_hooks():
    model = tiny_model("qwen2", seed=5)
    ids, mask, pos = left_padded(ROWS)
    real = mask.bool()
    plan = mixed_plan(model, 1)
    with steerfast.apply_hooks(model, plan):
        want = logits(model, ids, mask, pos)
    torch._dynamo.reset()
    with steerfast.patch(model, plan):
        compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
        with torch.no_grad():
            got = compiled(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    torch._dynamo.reset()
    assert (got - want)[real].abs().max().item() <= 1e-5


def test_plan_errors_and_describe_and_round_trip(tmp_path):
    model = tiny_model("llama", seed=0)
    d = model.config.hidden_size
    with pytest.raises(PlanError, match="unit direction"):
        Intervention(0, "mlp.out", "ablate", torch.ones(d), "all", 1.0)
    with pytest.raises(PlanError, match="residual stream"):
        Intervention(0, "mlp.neurons", "ablate", unit(d, 0), "all", 1.0)
    with pytest.raises(PlanError, match="non-zero"):
        SteeringPlan.ablate_everywhere(model, torch.zeros(d))
    with pytest.raises(PlanError, match="layers"):
        SteeringPlan.ablate_everywhere(model, unit(d, 0), layers=[99])
    plan = SteeringPlan.ablate_everywhere(model, unit(d, 1), 0.5, layers=[1])
    assert [(iv.layer, iv.site) for iv in plan.interventions] == [(1, "attn.out"), (1, "mlp.out")]
    assert "ablate" in describe(plan) and "strength=0.5" in describe(plan)
    plan.save(tmp_path / "p.safetensors")
    back = SteeringPlan.load(tmp_path / "p.safetensors")
    assert [iv.header() for iv in back.interventions] == [iv.header() for iv in plan.interventions]
    assert all(torch.equal(a.tensor, b.tensor) for a, b in zip(back.interventions, plan.interventions))


def test_two_ablates_in_a_row_and_ablate_then_add_keep_plan_order():
    """[ablate r1, ablate r2] (two lanes: they do not commute) and [ablate, add] at one site."""
    model = tiny_model("llama", seed=4)
    ids, mask, pos = left_padded(ROWS)
    real = mask.bool()
    d = model.config.hidden_size
    r1, r2 = unit(d, 1), unit(d, 2)
    r2 = (r2 + 3 * r1) / (r2 + 3 * r1).norm()  # far from orthogonal to r1: the order matters
    v = torch.randn(d, generator=torch.Generator().manual_seed(5))
    for ivs in (
        [
            Intervention(1, "mlp.out", "ablate", r1, "all", 1.0),
            Intervention(1, "mlp.out", "ablate", r2, "all", 1.0),
        ],
        [
            Intervention(1, "mlp.out", "ablate", r1, "all", 1.0),
            Intervention(1, "mlp.out", "add", v, "all", 1.0),
        ],
    ):
        fwd, rev = SteeringPlan(ivs, "ordered"), SteeringPlan(ivs[::-1], "reversed")
        with steerfast.patch(model, fwd):
            got = logits(model, ids, mask, pos)
        with steerfast.apply_hooks(model, fwd):
            want = logits(model, ids, mask, pos)
        with steerfast.apply_hooks(model, rev):
            other = logits(model, ids, mask, pos)
        assert (got - want)[real].abs().max().item() <= 1e-5
        assert (want - other)[real].abs().max().item() > 1e-4, "the two orders must differ"


def test_ablate_everywhere_subspace_projects_out_every_row_in_any_order():
    """A (k, D) direction: rows orthonormalised, the stream entering every layer has no
    component in their span (a combination of the raw rows included), and the result does
    not depend on the rows' order (projection onto the complement); dependent rows refused."""
    model = tiny_model("llama", seed=0)
    d = model.config.hidden_size
    g = torch.Generator().manual_seed(3)
    raw = torch.randn(3, d, generator=g) * torch.tensor([[1.0], [5.0], [0.2]])
    plan = SteeringPlan.ablate_everywhere(model, raw)
    n = get_adapter(model).num_layers(model)
    assert len(plan.interventions) == 3 * (1 + 2 * n) and plan.meta["rank"] == 3
    units = torch.stack([iv.tensor.reshape(-1) for iv in plan.interventions[:3]]).double()
    assert torch.allclose(units @ units.T, torch.eye(3, dtype=torch.float64), atol=1e-6)
    ids, mask, pos = left_padded(ROWS)
    real = mask.bool()
    with steerfast.patch(model, plan):
        after = _layer_inputs(model, lambda: logits(model, ids, mask, pos))
        out = logits(model, ids, mask, pos)
    mix = (raw.double().T @ torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)).float()
    for h in after:
        norm = h.double().norm(dim=-1)[real]
        for r in (*raw, mix):
            comp = (h.double() @ (r.double() / r.double().norm()))[real].abs()
            assert (comp <= 1e-5 * norm).all(), (comp / norm).max().item()
    with steerfast.patch(model, SteeringPlan.ablate_everywhere(model, raw.flip(0))):
        flipped = logits(model, ids, mask, pos)
    assert (flipped - out).abs().max() <= 1e-5
    with steerfast.patch(model, SteeringPlan.ablate_everywhere(model, raw[:1])):
        one = logits(model, ids, mask, pos)
    assert (one - out).abs().max() > 1e-3  # the other rows matter
    with pytest.raises(PlanError, match="linearly independent"):
        SteeringPlan.ablate_everywhere(model, torch.stack([raw[0], raw[1], raw[0] + raw[1]]))
    with pytest.raises(PlanError, match="1 <= k <= D"):
        SteeringPlan.ablate_everywhere(model, torch.randn(d + 1, d))
