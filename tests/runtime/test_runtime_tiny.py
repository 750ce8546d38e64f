"""Patched runtime vs the plain-hook oracle on tiny random models of every supported family."""

import pytest
import torch
from helpers import ARCHS

import steerfast
from steerfast.plan import Intervention, SteeringPlan
from steerfast.testing import random_plan, tiny_model
from steerfast.tokens import left_padded

ROWS = [[5, 9, 17, 33, 2, 7, 11, 64, 3], [40, 41, 42, 43], [7, 7, 100], [90, 12, 13, 14, 15, 16, 17]]


def logits(model, ids, mask, pos):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, position_ids=pos).logits


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("batch", [1, 4])
def test_patched_equals_hooks(arch, batch):
    model = tiny_model(arch, seed=1)
    plan = random_plan(model, seed=2)
    ids, mask, pos = left_padded(ROWS[:batch])
    base = logits(model, ids, mask, pos)
    with steerfast.patch(model, plan):
        fused = logits(model, ids, mask, pos)
    with steerfast.apply_hooks(model, plan):
        hooked = logits(model, ids, mask, pos)
    real = mask.bool()
    assert (fused - hooked)[real].abs().max().item() <= 1e-5
    assert (fused - base)[real].abs().max().item() > 1e-2, "the plan must change the logits"


@pytest.mark.parametrize("arch", ARCHS)
def test_generate_token_identical(arch):
    model = tiny_model(arch, seed=3)
    plan = random_plan(model, seed=4)
    ids, mask, _ = left_padded(ROWS)
    kw = dict(attention_mask=mask, max_new_tokens=32, min_new_tokens=32, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        plain = model.generate(ids, **kw)
        with steerfast.patch(model, plan):
            fused = model.generate(ids, **kw)
        with steerfast.apply_hooks(model, plan):
            hooked = model.generate(ids, **kw)
    assert torch.equal(fused, hooked)
    assert not torch.equal(fused, plain)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_left_padded_rows_equal_single_runs(arch):
    model = tiny_model(arch, seed=5)
    plan = random_plan(model, seed=6)
    ids, mask, pos = left_padded(ROWS)
    with steerfast.patch(model, plan):
        batch = logits(model, ids, mask, pos)
        for i, row in enumerate(ROWS):
            single = logits(model, *left_padded([row]))
            assert (batch[i, -len(row) :] - single[0]).abs().max().item() <= 1e-5


def test_revert_is_exact_and_idempotent():
    model = tiny_model("llama", seed=7)
    plan = random_plan(model, seed=8)
    ids, mask, pos = left_padded(ROWS)
    before = logits(model, ids, mask, pos)
    forwards = {name: mod.__dict__.get("forward") for name, mod in model.named_modules()}
    handle = steerfast.patch(model, plan)
    assert not torch.equal(logits(model, ids, mask, pos), before)
    handle.revert()
    handle.revert()
    assert torch.equal(logits(model, ids, mask, pos), before)
    assert {name: mod.__dict__.get("forward") for name, mod in model.named_modules()} == forwards
    steerfast.patch(model, plan).revert()  # patchable again after revert


def test_revert_after_exception_inside_steered_forward():
    model = tiny_model("llama", seed=9)
    plan = random_plan(model, seed=10)
    ids, mask, pos = left_padded(ROWS)
    before = logits(model, ids, mask, pos)
    with pytest.raises(RuntimeError, match="boom"), steerfast.patch(model, plan):

        def explode(mod, args):
            raise RuntimeError("boom")

        h = model.model.layers[1].register_forward_pre_hook(explode)
        try:
            logits(model, ids, mask, pos)
        finally:
            h.remove()
    assert torch.equal(logits(model, ids, mask, pos), before)


def test_strength_changes_in_place():
    model = tiny_model("llama", seed=11)
    plan = random_plan(model, seed=12)
    ids, mask, pos = left_padded(ROWS)
    with steerfast.patch(model, plan) as handle:
        handle.set_strength(0.0)
        zero = logits(model, ids, mask, pos)
        handle.set_strength(2.5, index=1)
        changed = logits(model, ids, mask, pos)
    assert torch.equal(zero, logits(model, ids, mask, pos))
    assert not torch.equal(changed, zero)
    with steerfast.apply_hooks(
        model,
        SteeringPlan(
            [
                iv if i == 1 else Intervention(iv.layer, iv.site, iv.kind, iv.tensor, iv.positions, 0.0)
                for i, iv in enumerate(plan.with_strength(2.5).interventions)
            ]
        ),
    ):
        hooked = logits(model, ids, mask, pos)
    assert (changed - hooked)[mask.bool()].abs().max().item() <= 1e-5


def test_bad_plans_leave_model_unpatched():
    model = tiny_model("llama", seed=13)
    h = model.config.hidden_size
    ids, mask, pos = left_padded(ROWS)
    before = logits(model, ids, mask, pos)
    bad = {
        "hidden_size": SteeringPlan(
            [Intervention(0, "mlp.out", "add", torch.randn(h))], model={"hidden_size": h + 1}
        ),
        "out of range": SteeringPlan(
            [
                Intervention(0, "mlp.out", "add", torch.randn(h)),
                Intervention(99, "mlp.out", "add", torch.randn(h)),
            ]
        ),
        "has size": SteeringPlan(
            [
                Intervention(0, "mlp.out", "add", torch.randn(h)),
                Intervention(1, "mlp.neurons", "scale", torch.ones(h)),
            ]
        ),
    }
    for match, plan in bad.items():
        with pytest.raises(steerfast.PlanError, match=match):
            steerfast.patch(model, plan)
        assert all("forward" not in m.__dict__ for m in model.modules())
        assert torch.equal(logits(model, ids, mask, pos), before)


def test_double_patch_and_unsupported_model():
    model = tiny_model("llama", seed=14)
    plan = random_plan(model)
    with steerfast.patch(model, plan), pytest.raises(steerfast.SteeringError, match="already patched"):
        steerfast.patch(model, plan)
    other = tiny_model("llama", seed=14)
    other.config.model_type = "bloom"  # a type with no site table
    with pytest.raises(steerfast.UnsupportedModelError, match="supported: cohere, falcon, gemma"):
        steerfast.patch(other, plan)


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_decode_logits_equal_hooks_and_use_whole_tensor_ops(arch, monkeypatch):
    """Decode steps of a one-plan patch run the dense realisations (docs/architecture.md, Realisations): no row op,
    biases riding the projection; every step's logits still equal the hook oracle."""
    import steerfast.ops
    from steerfast.runtime import steered

    model = tiny_model(arch, seed=15)
    plan = random_plan(model, seed=16)
    plan = plan + SteeringPlan(
        [
            Intervention(2, "mlp.neurons", "add", torch.randn(model.config.intermediate_size), "last", 0.5),
            Intervention(
                2,
                "attn.out",
                "scale",
                (torch.rand(model.config.hidden_size) > 0.5).float(),
                "from_prompt_end",
                0.7,
            ),
        ]
    )
    ids, mask, _ = left_padded(ROWS)
    kw = dict(
        attention_mask=mask,
        max_new_tokens=6,
        min_new_tokens=6,
        do_sample=False,
        pad_token_id=0,
        output_logits=True,
        return_dict_in_generate=True,
    )
    calls = []
    real_op = steered.ops.steer_rows_
    monkeypatch.setattr(steered.ops, "steer_rows_", lambda y, *a: (calls.append(y.shape[0]), real_op(y, *a)))
    with torch.no_grad():
        with steerfast.patch(model, plan):
            fused = model.generate(ids, **kw)
        with steerfast.apply_hooks(model, plan):
            hooked = model.generate(ids, **kw)
    assert torch.equal(fused.sequences, hooked.sequences)
    for a, b in zip(fused.logits, hooked.logits):
        assert (a - b).abs().max().item() <= 1e-5
    prefill_rows = ids.shape[0] * ids.shape[1]
    assert calls and all(n == prefill_rows for n in calls), "decode steps must not call the row op"
