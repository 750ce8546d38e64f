"""Under torch.compile the steered forward is plain torch ops (no steerfast:: custom op in the
graph, so Inductor can fuse the steering into the projection's epilogue); the fused kernels stay
for eager. Compiled (fullgraph, StaticCache, Inductor) decode equals eager and the hook oracle,
for patch() and for a bank with a distinct slot per row."""

import pytest
import torch
from transformers import StaticCache

import steerfast
from steerfast import ops
from steerfast.testing import random_plan, tiny_model

B, P, NEW = 3, 6, 4
POLICIES = ("last", "all", "from_prompt_end", "prompt_last", "prefix:2")


def _ids():
    return torch.randint(3, 100, (B, P), generator=torch.Generator().manual_seed(0))


def _decode(fn, model, ids):
    """Prefill + NEW greedy steps on a StaticCache, the 2-D mask growing as generate does;
    the last position's logits of every call, stacked."""
    cache = StaticCache(config=model.config, max_cache_len=P + NEW + 1)
    outs = []
    with torch.no_grad():
        o = fn(
            input_ids=ids,
            attention_mask=torch.ones(B, P, dtype=torch.long),
            past_key_values=cache,
            cache_position=torch.arange(P),
            use_cache=True,
        )
        for i in range(NEW + 1):
            outs.append(o.logits[:, -1].float())
            if i == NEW:
                break
            o = fn(
                input_ids=o.logits[:, -1:].argmax(-1),
                attention_mask=torch.ones(B, P + i + 1, dtype=torch.long),
                past_key_values=cache,
                cache_position=torch.tensor([P + i]),
                use_cache=True,
            )
    return torch.stack(outs)


def _steerfast_targets(graphs) -> list[str]:
    return [
        str(n.target)
        for gm in graphs
        for n in gm.graph.nodes
        if n.op == "call_function" and "steerfast" in str(n.target)
    ]


def test_decomposition_equals_the_op():
    g = torch.Generator().manual_seed(1)
    y = torch.randn(7, 16, generator=g)
    slots = torch.tensor([0, -1, 2, 1, -1, 0, 2], dtype=torch.int32)
    mask, bias = (torch.rand(3, 16, generator=g) > 0.5).float(), torch.randn(3, 16, generator=g)
    delta, coef = torch.randn(3, generator=g), torch.randn(3, generator=g)
    for args in ((mask, delta, None, None), (None, None, bias, coef), (mask, delta, bias, coef)):
        want = y.clone()
        ops.steer_rows_(want, slots, *args)
        got = ops.steered_rows(y, slots, *args)
        assert torch.equal(got, want)
    half = y.bfloat16()
    want = half.clone()
    ops.steer_rows_(want, slots, mask, delta, bias, coef)
    assert torch.equal(ops.steered_rows(half, slots, mask, delta, bias, coef), want)


@pytest.mark.parametrize("kind", ["patch", "bank"])
def test_compiled_graph_has_no_custom_op(kind):
    """Prefill (row maps) and decode steps of the dynamo graphs: gathers, mul, add, addmm only."""
    torch._dynamo.reset()
    model = tiny_model("llama", seed=3)
    plan = random_plan(model, seed=4, policies=POLICIES)
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    if kind == "patch":
        handle = steerfast.patch(model, plan)
    else:
        handle = steerfast.SteeringBank(model, slots=3)
        handle.load_all({0: plan, 1: random_plan(model, seed=5, policies=POLICIES)})
        handle.assign([0, 1, -1])
    with handle:
        eager = _decode(model, model, _ids())
        got = _decode(torch.compile(model, backend=backend, fullgraph=True), model, _ids())
    assert graphs
    assert _steerfast_targets(graphs) == []
    assert (got - eager).abs().max().item() <= 1e-5
    torch._dynamo.reset()


@pytest.mark.parametrize("kind", ["patch", "bank"])
def test_inductor_static_cache_decode_equals_eager_and_hooks(kind):
    torch._dynamo.reset()
    model = tiny_model("llama", seed=6, num_hidden_layers=2)
    plans = [random_plan(model, seed=7, policies=POLICIES), random_plan(model, seed=8)]
    ids = _ids()
    rows = [0, 0, 0] if kind == "patch" else [0, 1, -1]
    want = []
    for r, s in enumerate(rows):  # the oracle: each row alone under the hooks of its plan
        if s < 0:
            want.append(_decode(model, model, ids)[:, r])
            continue
        with steerfast.apply_hooks(model, plans[s]):
            want.append(_decode(model, model, ids)[:, r])
    want = torch.stack(want, 1)
    if kind == "patch":
        handle = steerfast.patch(model, plans[0])
    else:
        handle = steerfast.SteeringBank(model, slots=2)
        handle.load_all({0: plans[0], 1: plans[1]})
        handle.assign(rows)
    with handle:
        eager = _decode(model, model, ids)
        compiled = _decode(torch.compile(model, fullgraph=True), model, ids)
    assert (eager - want).abs().max().item() <= 1e-5
    assert (compiled - eager).abs().max().item() <= 1e-4
    assert (compiled - want).abs().max().item() <= 1e-4
    torch._dynamo.reset()
