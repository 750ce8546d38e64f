"""Issue 22's classes of bad input: each one used to give a silent wrong result or a raw error;
now a SteeringError/PlanError naming the argument, with the model untouched."""

import pickle

import pytest
import torch

from steerfast import apply_hooks, patch
from steerfast.errors import PlanError, SteeringError, UnsupportedModelError
from steerfast.plan import MAX_EDIT, Intervention, SteeringPlan, model_hint
from steerfast.positions import parse_policy
from steerfast.recipes import actadd, laai
from steerfast.runtime.bank import SteeringBank
from steerfast.steered_generation import Steer, generate, stream
from steerfast.testing import tiny_model, tiny_tokenizer

IDS = torch.tensor([[3, 5, 7, 9, 11]])


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama", seed=1, num_hidden_layers=2)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def _plan(model, site="attn.out", strength=1.0):
    t = torch.randn(model.config.hidden_size, generator=torch.Generator().manual_seed(0))
    return SteeringPlan([Intervention(1, site, "add", t, "all", strength)], "t", model_hint(model))


def _logits(model):
    with torch.no_grad():
        return model(input_ids=IDS).logits


# --- values that overflow --------------------------------------------------------------------
@pytest.mark.parametrize("strength", [1e38, -1e30, 2 * MAX_EDIT])
def test_overflowing_strength_is_refused_up_front(model, strength):
    with pytest.raises(PlanError, match="exceeds 1e"):
        _plan(model).with_strength(strength)
    clean = _logits(model)
    with patch(model, _plan(model)) as handle:
        steered = _logits(model)
        with pytest.raises(PlanError, match="exceeds"):
            handle.set_strength(strength)
        assert torch.equal(_logits(model), steered)  # nothing half-applied
    assert torch.equal(_logits(model), clean)


def test_steer_strength_overflow_in_generate_is_refused(model, tok):
    before = _logits(model)
    with pytest.raises(PlanError, match="exceeds"):
        generate(model, tok, ["hi"], [Steer(_plan(model), 1e30)], max_new_tokens=2)
    assert torch.equal(_logits(model), before)


@pytest.mark.parametrize("arch", ["llama", "gemma3_text", "gpt2"])
@pytest.mark.parametrize("site", ["embed.out", "attn.heads", "attn.out", "mlp.neurons", "mlp.out"])
def test_edits_at_the_bound_give_finite_logits(arch, site):
    m = tiny_model(arch, seed=0, num_hidden_layers=2)
    layer = 0 if site == "embed.out" else 1
    from steerfast.adapters import get_adapter

    dim = get_adapter(m).site_dim(m, layer, site)
    ivs = []
    for kind in ("add", "scale"):
        t = torch.ones(dim) * (1 if kind == "scale" else -1)
        ivs.append(Intervention(layer, site, kind, t, "all", MAX_EDIT))
    with patch(m, SteeringPlan(ivs, "bound", model_hint(m))):
        assert torch.isfinite(_logits(m)).all()


# --- types accepted that should not be ----------------------------------------------------------
@pytest.mark.parametrize("layer", [True, 1.5, "1", None])
def test_actadd_layer_must_be_an_int(model, tok, layer):
    with pytest.raises(PlanError, match="layer must be an int"):
        actadd(model, tok, "a b", "c d", layer=layer)


@pytest.mark.parametrize("prompt", [5, None, ["a"], b"a"])
def test_actadd_prompts_must_be_strings(model, tok, prompt):
    with pytest.raises(PlanError, match="positive must be a prompt string"):
        actadd(model, tok, prompt, "c d", layer=1)


def test_stream_refuses_a_prompt_list(model, tok):
    with pytest.raises(SteeringError, match="one prompt string"):
        list(stream(model, tok, ["a", "b"], max_new_tokens=2))


@pytest.mark.parametrize("text", ["prefix:\u0661", "prefix:²", "prefix:\uff13", "prefix:-1"])
def test_prefix_needs_ascii_digits(text):
    with pytest.raises(PlanError, match="prefix needs a positive length"):
        parse_policy(text)


def test_bank_load_none_is_refused_and_keeps_the_slot(model):
    plan = _plan(model)
    with SteeringBank(model, 2) as bank:
        bank.load(0, plan)
        with pytest.raises(SteeringError, match="unload"):
            bank.load(0, None)
        assert bank.plans[0] is plan
        with pytest.raises(SteeringError, match="needs a dict"):
            bank.load_all([(0, plan)])


# --- raw errors where a mistake deserves a sentence ---------------------------------------------
def test_bare_steer_instead_of_a_list(model, tok):
    for steer in (Steer(_plan(model)), _plan(model)):
        with pytest.raises(SteeringError, match=r"steer must be a list.*steer=\[\.\.\.\]"):
            generate(model, tok, ["hi"], steer, max_new_tokens=2)


@pytest.mark.parametrize("prompts", [[], (), None, 5, ["a", 3], [None]])
def test_prompts_must_be_a_nonempty_list_of_strings(model, tok, prompts):
    with pytest.raises(SteeringError, match="prompts"):
        generate(model, tok, prompts, max_new_tokens=2)


@pytest.mark.parametrize("seed", ["x", 1.5, None, True])
def test_laai_seed_must_be_an_int(model, tok, seed):
    with pytest.raises(PlanError, match="seed must be an int"):
        laai(model, tok, [("a", "b")], layers=[0], steps=1, seed=seed, progress=False)


def test_meta_device_plan_tensor(model):
    t = torch.empty(model.config.hidden_size, device="meta")
    with pytest.raises(PlanError, match="meta device"):
        Intervention(1, "attn.out", "add", t)


@pytest.mark.parametrize("slots", [["a"], [[0], [1, 2]], [object()], "ab"])
def test_bank_assign_non_int_rows(model, slots):
    with SteeringBank(model, 2) as bank, pytest.raises(SteeringError, match="row slots"):
        bank.assign(slots)


def test_patch_on_a_base_model_without_lm_head(model):
    from transformers import LlamaModel

    base = LlamaModel(model.config)
    for apply in (patch, apply_hooks):
        with pytest.raises(UnsupportedModelError, match="LM head"):
            apply(base, _plan(model))


def test_pickling_a_patched_model_is_refused_then_works_after_revert(model):
    before = _logits(model)
    with patch(model, _plan(model)):
        with pytest.raises(SteeringError, match="cannot be pickled"):
            pickle.dumps(model)
        with pytest.raises(SteeringError, match="cannot be pickled"):
            torch.save(model, __import__("io").BytesIO())
    copy = pickle.loads(pickle.dumps(model))
    assert torch.equal(_logits(copy), before)


# --- metadata that does not round-trip ----------------------------------------------------------
@pytest.mark.parametrize(
    "meta, match",
    [
        ({1: "a"}, "keys must be strings"),
        ({"t": (1, 2)}, "tuple"),
        ({"x": {"y": [1, {2}]}}, "set"),
        ({"f": float("nan")}, "finite"),
        ({"o": object()}, "JSON-native"),
        ({"tensor": torch.ones(2)}, "Tensor"),
    ],
)
def test_save_refuses_metadata_that_would_not_round_trip(model, tmp_path, meta, match):
    plan = SteeringPlan(_plan(model).interventions, "t", model_hint(model), meta)
    with pytest.raises(PlanError, match=match):
        plan.save(tmp_path / "p.safetensors")
    assert not (tmp_path / "p.safetensors").exists()


def test_json_native_metadata_round_trips_exactly(model, tmp_path):
    meta = {"a": [1, 2.5, "é", None, True, {"n": [[]]}], "b": {"c": -3}}
    SteeringPlan(_plan(model).interventions, "t", model_hint(model), meta).save(tmp_path / "p.safetensors")
    assert SteeringPlan.load(tmp_path / "p.safetensors").meta == meta


# --- a user's hook and the steering edit: one order ---------------------------------------------
OUT_PROJ = {  # layer 1's attention output projection: plain Linear (fast), GPT-2's Conv1D (wrapped)
    "llama": lambda m: m.model.layers[1].self_attn.o_proj,
    "gpt2": lambda m: m.transformer.h[1].attn.c_proj,
}


def _user_hooks(model, side):
    """A user's hook on o_proj of layer 1: x1.1 on its output, or +0.1 on its input."""
    o_proj = OUT_PROJ[model.config.model_type](model)
    if side == "out":
        return o_proj.register_forward_hook(lambda mod, args, out: out * 1.1)
    return o_proj.register_forward_pre_hook(lambda mod, args: (args[0] + 0.1,))


@pytest.mark.parametrize("site, side", [("attn.out", "out"), ("attn.heads", "in"), ("attn.out", "in")])
@pytest.mark.parametrize("user_first", [True, False])
@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_user_hook_and_steering_edit_order_agree(arch, site, side, user_first):
    """docs/architecture.md, User hooks: the edit is part of the module's forward: the user's
    forward pre-hooks run before it, their forward hooks after it, for patch() and apply_hooks,
    whichever was registered first. Same fp32 arithmetic: logits within 1e-5."""
    model = tiny_model(arch, seed=1, num_hidden_layers=2)
    plan = _plan(model, site)
    clean = _logits(model)
    results = []
    for apply in (patch, apply_hooks):
        if user_first:
            user = _user_hooks(model, side)
            handle = apply(model, plan)
        else:
            handle = apply(model, plan)
            user = _user_hooks(model, side)
        got = _logits(model)
        user.remove()
        handle.revert() if hasattr(handle, "revert") else handle.remove()
        results.append(got)
    assert torch.equal(_logits(model), clean)
    torch.testing.assert_close(results[0], results[1], atol=1e-5, rtol=0)
    # and the order is the documented one: hand-computed with the edit inside o_proj's forward
    o_proj = OUT_PROJ[arch](model)
    t = plan.interventions[0].tensor[0]
    if site == "attn.out":
        edit = o_proj.register_forward_hook(lambda mod, args, out: out + t, prepend=True)
    else:
        edit = o_proj.register_forward_pre_hook(lambda mod, args: (args[0] + t,))
    user = _user_hooks(model, side) if site == "attn.out" or side == "out" else None
    if site == "attn.heads" and side == "in":  # the user's pre-hook runs before the edit
        edit.remove()
        user = _user_hooks(model, side)
        edit = o_proj.register_forward_pre_hook(lambda mod, args: (args[0] + t,))
    want = _logits(model)
    edit.remove()
    user.remove()
    torch.testing.assert_close(results[0], want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", ["load", "unload", "set_strength"])
@pytest.mark.parametrize("slot", [[], {}, [0]])
def test_bank_unhashable_slot_is_a_steering_error(method, slot):
    # found by the entry-point property test in CI: bank.load([], plan) raised a raw
    # "TypeError: unhashable type: 'list'" from building {slot: plan}
    from steerfast.testing import random_plan, tiny_model

    model = tiny_model("llama")
    with SteeringBank(model, 2) as bank:
        args = {"load": (random_plan(model, seed=1),), "unload": (), "set_strength": (1.0,)}[method]
        with pytest.raises(SteeringError, match="slot must be an int"):
            getattr(bank, method)(slot, *args)
