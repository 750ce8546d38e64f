"""The model the user already has: accelerate offload, PEFT, other people's forward wrappers,
edits made while patched, and the runtime's own invariants (plan order, locking, copies)."""

import copy
import threading
import time

import pytest
import torch
from torch import nn

import steerfast
from steerfast.errors import SteeringError
from steerfast.plan import Intervention, SteeringPlan
from steerfast.testing import random_plan, tiny_model
from steerfast.tokens import left_padded

ROWS = [[5, 9, 17, 33, 2, 7, 11, 64, 3], [40, 41, 42, 43], [7, 7, 100]]


def logits(model, ids, mask, pos):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, position_ids=pos).logits


@pytest.fixture
def batch():
    return left_padded(ROWS)


def _steered_reference(arch, plan_seed, batch):
    model = tiny_model(arch, seed=1)
    plan = random_plan(model, seed=plan_seed)
    base = logits(model, *batch)
    with steerfast.patch(model, plan):
        want = logits(model, *batch)
    return model, plan, base, want


@pytest.mark.parametrize("arch", ["llama", "starcoder2"])
def test_disk_offload_equals_the_plain_model(arch, batch, tmp_path):
    from transformers import AutoModelForCausalLM

    model, plan, base, want = _steered_reference(arch, 2, batch)
    model.save_pretrained(tmp_path / "m")
    device_map = {
        "model.embed_tokens": "cpu",
        "model.layers.0": "cpu",
        "model.layers.1": "disk",
        "model.layers.2": "disk",
        "model.norm": "cpu",
        "model.rotary_emb": "cpu",
        "lm_head": "cpu",
    }
    off = AutoModelForCausalLM.from_pretrained(
        tmp_path / "m", device_map=device_map, offload_folder=str(tmp_path / "off")
    ).eval()
    assert off.model.layers[1].self_attn.o_proj.weight.is_meta, "the layer must really be offloaded"
    with steerfast.patch(off, plan) as handle:
        got = logits(off, *batch)
        assert {r["realisation"] for r in handle.describe()} == {"wrapped"}
    real = batch[1].bool()
    assert (got - want)[real].abs().max().item() <= 1e-6
    assert (logits(off, *batch) - base).abs().max().item() <= 1e-6, "offload hooks still work after revert"


def test_cpu_offload_with_the_embedding_offloaded(batch):
    from accelerate import cpu_offload

    model, plan, base, want = _steered_reference("llama", 3, batch)
    off = tiny_model("llama", seed=1)
    cpu_offload(off, execution_device=torch.device("cpu"))
    assert off.model.embed_tokens.weight.is_meta
    with steerfast.patch(off, plan):
        got = logits(off, *batch)
    real = batch[1].bool()
    assert (got - want)[real].abs().max().item() <= 1e-6
    assert (logits(off, *batch) - base).abs().max().item() <= 1e-6


def test_peft_lora_wrapped_projections(batch):
    import peft  # in the test extras: a missing one fails

    model = tiny_model("llama", seed=1)
    cfg = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["o_proj", "down_proj"], init_lora_weights=False)
    wrapped = peft.get_peft_model(model, cfg).eval()
    inner = wrapped.base_model.model
    plan = random_plan(inner, seed=4)
    o_proj = inner.model.layers[2].self_attn.o_proj
    saved = (type(o_proj), o_proj.__dict__.get("forward"))
    real = batch[1].bool()
    base = logits(inner, *batch)
    with steerfast.patch(inner, plan) as handle:
        fused = logits(inner, *batch)
        kinds = {r["module"]: r["realisation"] for r in handle.describe()}
    assert kinds["model.layers.2.self_attn.o_proj"] == "wrapped"
    with steerfast.apply_hooks(inner, plan):
        hooked = logits(inner, *batch)
    assert (fused - hooked)[real].abs().max().item() <= 1e-5
    assert (fused - base)[real].abs().max().item() > 1e-2
    assert (type(o_proj), o_proj.__dict__.get("forward")) == saved
    assert torch.equal(logits(inner, *batch), base)


def _doubling(module):
    inner = module.forward

    def forward(x):
        return 2.0 * inner(x)

    return forward


def test_wrapper_installed_before_patch_still_runs(batch):
    model = tiny_model("llama", seed=1)
    plan = random_plan(model, seed=5)
    proj = model.model.layers[1].mlp.down_proj
    proj.forward = _doubling(proj)
    theirs = proj.forward
    with steerfast.patch(model, plan) as handle:
        fused = logits(model, *batch)
        assert {r["module"]: r["realisation"] for r in handle.describe()}[
            "model.layers.1.mlp.down_proj"
        ] == "wrapped"
    with steerfast.apply_hooks(model, plan):
        hooked = logits(model, *batch)
    assert (fused - hooked)[batch[1].bool()].abs().max().item() <= 1e-5
    assert proj.forward is theirs


def test_wrapper_installed_after_patch_survives_revert(batch):
    model = tiny_model("llama", seed=1)
    plan = random_plan(model, seed=6)
    base = logits(model, *batch)
    proj = model.model.layers[2].self_attn.o_proj
    handle = steerfast.patch(model, plan)
    proj.forward = _doubling(proj)
    theirs = proj.forward
    handle.revert()
    assert proj.forward is theirs
    proj.__dict__.pop("forward")  # the user's own unwrap
    assert torch.equal(logits(model, *batch), base)


def test_model_to_bf16_while_patched_equals_hooks(batch):
    model = tiny_model("llama", seed=1)
    plan = SteeringPlan(
        [
            Intervention(1, "mlp.out", "add", torch.randn(64), "from_prompt_end", 3.0),
            Intervention(2, "attn.heads", "scale", (torch.randn(64) > 0).float(), "last", 0.5),
        ],
        "caa",
    )
    ids, mask, _ = batch
    kw = dict(attention_mask=mask, max_new_tokens=8, min_new_tokens=8, do_sample=False, pad_token_id=0)
    with steerfast.patch(model, plan):
        model.to(torch.bfloat16)
        with torch.no_grad():
            fused = model.generate(ids, **kw)
    with steerfast.apply_hooks(model, plan), torch.no_grad():
        hooked = model.generate(ids, **kw)
    assert torch.equal(fused, hooked)


def test_bias_edited_while_patched_is_used_in_decode(batch):
    model = tiny_model("starcoder2", seed=1)  # projections with a bias
    plan = SteeringPlan([Intervention(1, "mlp.out", "add", torch.randn(64), "from_prompt_end", 3.0)], "caa")
    ids, mask, _ = batch
    kw = dict(
        attention_mask=mask,
        max_new_tokens=8,
        min_new_tokens=8,
        do_sample=False,
        pad_token_id=0,
        output_logits=True,
        return_dict_in_generate=True,
    )
    with steerfast.patch(model, plan), torch.no_grad():
        model.generate(ids, **kw)  # folds the bias for decode
        model.model.layers[1].mlp.c_proj.bias.add_(0.5)
        fused = model.generate(ids, **kw)
    with steerfast.apply_hooks(model, plan), torch.no_grad():
        hooked = model.generate(ids, **kw)
    assert torch.equal(fused.sequences, hooked.sequences)
    for a, b in zip(fused.logits, hooked.logits):
        assert (a - b).abs().max().item() <= 1e-5


def test_bf16_decode_matches_hooks_exactly_where_the_fold_would_not(batch):
    """In half precision the decode add is not folded into the addmm bias (it rounds differently)."""
    model = tiny_model("llama", seed=1, dtype=torch.bfloat16)
    plan = SteeringPlan([Intervention(1, "mlp.out", "add", torch.randn(64), "from_prompt_end", 3.0)], "caa")
    ids, mask, _ = batch
    kw = dict(
        attention_mask=mask,
        max_new_tokens=8,
        min_new_tokens=8,
        do_sample=False,
        pad_token_id=0,
        output_logits=True,
        return_dict_in_generate=True,
    )
    with steerfast.patch(model, plan), torch.no_grad():
        fused = model.generate(ids, **kw)
    with steerfast.apply_hooks(model, plan), torch.no_grad():
        hooked = model.generate(ids, **kw)
    assert torch.equal(fused.sequences, hooked.sequences)
    for a, b in zip(fused.logits, hooked.logits):
        assert torch.equal(a, b)


def test_interventions_on_one_site_apply_in_plan_order(batch):
    """A scale at prompt_last then an add at from_prompt_end (sadi + caa), and the reverse."""
    model = tiny_model("llama", seed=1)
    mask_t = (torch.randn(64, generator=torch.Generator().manual_seed(1)) > 0).float()
    vec = torch.randn(64, generator=torch.Generator().manual_seed(2))
    sadi = SteeringPlan([Intervention(1, "mlp.out", "scale", mask_t, "prompt_last", 4.0)], "sadi")
    caa = SteeringPlan(
        [
            Intervention(1, "mlp.out", "add", vec, "from_prompt_end", 3.0),
            Intervention(1, "mlp.out", "scale", mask_t, "all", -0.5),
            Intervention(1, "mlp.out", "add", vec, "from_prompt_end", 1.0),
        ],
        "caa",
    )
    real = batch[1].bool()
    results = []
    for plan in (sadi + caa, caa + sadi):
        with steerfast.patch(model, plan):
            fused = logits(model, *batch)
        with steerfast.apply_hooks(model, plan):
            hooked = logits(model, *batch)
        assert (fused - hooked)[real].abs().max().item() <= 1e-5
        results.append(fused)
    assert (results[0] - results[1])[real].abs().max().item() > 1e-3, "the two orders differ"


def test_set_strength_from_another_thread_never_tears_a_forward(batch):
    model = tiny_model("llama", seed=1)
    plan = random_plan(model, seed=8, policies=("all",) * 5)
    ids, mask, _ = batch
    kw = dict(attention_mask=mask, max_new_tokens=10, min_new_tokens=10, do_sample=False, pad_token_id=0)
    with steerfast.patch(model, plan) as handle, torch.no_grad():
        want = model.generate(ids, **kw)
        stop = threading.Event()

        def hammer():
            while not stop.is_set():
                handle.set_strength(1.0)  # the same value every time
                time.sleep(0.002)  # the lock is not fair: let forwards in

        t = threading.Thread(target=hammer)
        t.start()
        try:
            got = [model.generate(ids, **kw) for _ in range(3)]
        finally:
            stop.set()
            t.join(timeout=30)
        assert not t.is_alive()
    for g in got:
        assert torch.equal(g, want)


def test_bank_assign_copies_the_callers_tensor():
    model = tiny_model("llama", seed=1)
    with steerfast.SteeringBank(model, slots=2) as bank:
        mine = torch.tensor([0, 1, -1])
        bank.assign(mine)
        bank.assign(torch.tensor([1, 1, 1]))
        assert mine.tolist() == [0, 1, -1]
        for bad in ([0.5, 1.0], [[0, 1]], [True, False], torch.tensor([0.0])):
            with pytest.raises(SteeringError, match="1-D list of ints"):
                bank.assign(bad)


def test_set_strength_index_out_of_range_is_refused():
    model = tiny_model("llama", seed=1)
    plan = random_plan(model, seed=1)
    with steerfast.patch(model, plan) as handle:
        for bad in (99, -1, 1.0, True):
            with pytest.raises(SteeringError, match="index must be an int"):
                handle.set_strength(2.0, index=bad)
        handle.set_strength(2.0, index=1)
        assert handle.plan.interventions[1].strength == 2.0


def test_hooks_and_patch_refuse_to_stack(batch):
    model = tiny_model("llama", seed=1)
    plan = random_plan(model, seed=1)
    with steerfast.patch(model, plan), pytest.raises(SteeringError, match="revert"):
        steerfast.apply_hooks(model, plan)
    with steerfast.apply_hooks(model, plan), pytest.raises(SteeringError, match="apply_hooks"):
        steerfast.patch(model, plan)
    with steerfast.patch(model, plan):  # both free again
        pass


def test_patched_projection_never_edits_an_observed_input(batch):
    model = tiny_model("llama", seed=1)
    plan = SteeringPlan([Intervention(2, "attn.heads", "scale", torch.ones(64), "all", 3.0)], "x")
    held = []
    proj = model.model.layers[2].self_attn.o_proj
    h = proj.register_forward_pre_hook(lambda m, a: held.append((a[0], a[0].clone())))
    with steerfast.patch(model, plan), torch.no_grad():
        logits(model, *batch)
    h.remove()
    seen, copy_at_call = held[0]
    assert torch.equal(seen, copy_at_call)


def test_deepcopy_of_a_patched_model_is_refused_clearly():
    model = tiny_model("llama", seed=1)
    with steerfast.patch(model, random_plan(model, seed=1)), pytest.raises(SteeringError, match="revert"):
        copy.deepcopy(model)
    assert isinstance(copy.deepcopy(model), nn.Module)


def test_failed_load_leaves_the_bank_as_it_was(batch):
    model = tiny_model("llama", seed=1)
    plan = random_plan(model, seed=1)
    with steerfast.SteeringBank(model, slots=2) as bank:
        bank.load(0, plan)
        bank.assign([0, 0, -1])
        before = logits(model, *batch)
        wrong = SteeringPlan([Intervention(1, "mlp.out", "add", torch.ones(65), "all", 1.0)], "x")
        with pytest.raises(steerfast.PlanError):
            bank.load_all({1: plan, 0: wrong})
        assert bank.plans[1] is None
        assert torch.equal(logits(model, *batch), before)
