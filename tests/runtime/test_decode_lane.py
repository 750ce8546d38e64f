"""Decode lanes (runtime/steered.py, _decode_lane): a fast-realised projection whose decode
step is an ablation chain or a folded add runs F.linear and the fused kernels bound once. They
must take every steady decode step, and step aside to the general path (and stay equal to the
hook oracle) whenever what they were resolved for changes: the backend, the projection's bias
contents or its parameters, the batch size, grad mode."""

import pytest
import torch
from helpers import unit
from torch import nn

import steerfast
from steerfast import ops
from steerfast.plan import Intervention, SteeringPlan
from steerfast.runtime import steered
from steerfast.testing import tiny_model

STEPS = 4

pytestmark = pytest.mark.usefixtures("fused_backend")


def add_plan(model):
    d = model.config.hidden_size
    g = torch.Generator().manual_seed(3)
    ivs = [Intervention(layer, "mlp.out", "add", torch.randn(d, generator=g), "all", 0.8) for layer in (0, 1)]
    return SteeringPlan(ivs, "add")


def ablate_plan(model):
    return SteeringPlan.ablate_everywhere(model, unit(model.config.hidden_size, 5))


@pytest.fixture
def general_calls(monkeypatch):
    """How many projection decode steps took the general path (_dense_linear)."""
    calls = []
    real = steered._dense_linear

    def counted(module, tables, x):
        calls.append(module)
        return real(module, tables, x)

    monkeypatch.setattr(steered, "_dense_linear", counted)
    return calls


def next_token_step(model, o, **kw):
    """One decode step on o's cache, fed o's greedy next token."""
    return model(input_ids=o.logits[:, -1:].argmax(-1), past_key_values=o.past_key_values, **kw)


def decode(model, ids, steps=STEPS, between=None):
    """Greedy decode on a DynamicCache: logits of the prefill and every step; `between(i)` runs
    before step i."""
    out = []
    with torch.no_grad():
        o = model(input_ids=ids, use_cache=True)
        for i in range(steps):
            out.append(o.logits[:, -1])
            if between is not None:
                between(i)
            o = next_token_step(model, o, use_cache=True)
        out.append(o.logits[:, -1])
    return torch.stack(out)


def ids_for(batch, length=6, seed=0):
    return torch.randint(3, 100, (batch, length), generator=torch.Generator().manual_seed(seed))


def assert_close(got, want, tol=1e-5):
    assert got.shape == want.shape
    diff = (got - want).abs().max().item()
    assert diff <= tol, diff


@pytest.mark.parametrize("plan_of", [ablate_plan, add_plan], ids=["ablate", "add"])
def test_steady_decode_steps_take_the_lane_and_equal_hooks(plan_of, general_calls):
    model = tiny_model("llama", seed=31, mlp_bias=True)
    plan, ids = plan_of(model), ids_for(3)
    with steerfast.apply_hooks(model, plan):
        want = decode(model, ids)
    with steerfast.patch(model, plan):
        got = decode(model, ids)
    assert_close(got, want)
    assert general_calls == []


def test_backend_switch_mid_generation_leaves_the_lane(general_calls):
    model = tiny_model("llama", seed=32)
    plan, ids = ablate_plan(model), ids_for(2)
    with steerfast.apply_hooks(model, plan):
        want = decode(model, ids)
    sites = 2 * model.config.num_hidden_layers

    def switch(i):
        if i == 2:
            ops.set_backend("reference")

    with steerfast.patch(model, plan):
        got = decode(model, ids, between=switch)
    assert_close(got, want)
    # steps 0-1 on the lane; steps 2 and 3 on the reference ops, through the general path
    assert len(general_calls) == 2 * sites


def test_in_place_bias_edit_is_seen_by_the_folded_add(general_calls):
    model = tiny_model("llama", seed=33, mlp_bias=True)
    plan, ids = add_plan(model), ids_for(2)
    down = model.model.layers[1].mlp.down_proj

    def edit(i):
        if i == 2:
            down.bias.add_(0.25)

    with steerfast.apply_hooks(model, plan):
        want = decode(model, ids, between=edit)
    with torch.no_grad():
        down.bias.sub_(0.25)
    with steerfast.patch(model, plan):
        got = decode(model, ids, between=edit)
    assert_close(got, want)
    assert general_calls == []  # the lane re-resolved itself on the new bias version


def test_replaced_weight_is_used_from_the_next_step(general_calls):
    model = tiny_model("llama", seed=34)
    plan, ids = ablate_plan(model), ids_for(2)
    o_proj = model.model.layers[0].self_attn.o_proj
    old = o_proj.weight
    new = nn.Parameter(old.detach() * 0.5)

    def swap(i):
        if i == 1:
            o_proj.weight = new

    with steerfast.apply_hooks(model, plan):
        want = decode(model, ids, between=swap)
    o_proj.weight = old
    with steerfast.patch(model, plan):
        got = decode(model, ids, between=swap)
    assert_close(got, want)
    assert o_proj.weight is new


@pytest.mark.parametrize("which", ["patch", "bank"])
def test_a_new_batch_size_re_resolves_the_lane(which, general_calls):
    model = tiny_model("llama", seed=35)
    plan = ablate_plan(model)
    other = SteeringPlan.ablate_everywhere(model, unit(model.config.hidden_size, 6), alpha=0.5)
    for batch in (3, 1, 4):
        ids = ids_for(batch, seed=batch)
        rows = [r % 3 - 1 for r in range(batch)]  # -1, 0, 1, -1, ...: distinct slots per row
        want = []
        for r in range(batch):
            slot = 0 if which == "patch" else rows[r]
            if slot < 0:
                want.append(decode(model, ids[r : r + 1]))
                continue
            with steerfast.apply_hooks(model, (plan, other)[slot]):
                want.append(decode(model, ids[r : r + 1]))
        want = torch.cat(want, 1)
        if which == "patch":
            with steerfast.patch(model, plan):
                got = decode(model, ids)
        else:
            with steerfast.SteeringBank(model, slots=2) as bank:
                bank.load_all({0: plan, 1: other})
                bank.assign(rows)
                got = decode(model, ids)
        assert_close(got, want)
    assert general_calls == []


def test_grad_enabled_step_leaves_the_lane_and_keeps_gradients(general_calls):
    model = tiny_model("llama", seed=36)
    plan, ids = ablate_plan(model), ids_for(2)
    weight = model.model.layers[1].mlp.down_proj.weight

    def step_with_grad():
        with torch.no_grad():
            o = next_token_step(model, model(input_ids=ids, use_cache=True), use_cache=True)
        model.zero_grad()
        logits = next_token_step(model, o).logits
        (logits * torch.linspace(-1, 1, logits.shape[-1])).sum().backward()
        return logits.detach(), weight.grad.clone()

    with steerfast.apply_hooks(model, plan):
        want, want_grad = step_with_grad()
    with steerfast.patch(model, plan):
        got, grad = step_with_grad()
    assert_close(got, want)
    assert (grad - want_grad).abs().max().item() <= 1e-5 * max(1.0, want_grad.abs().max().item())
    assert len(general_calls) == 2 * model.config.num_hidden_layers  # the grad step only
