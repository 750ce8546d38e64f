"""Gradients through a patched model equal gradients through the plain-hook oracle.

Public API only (patch, apply_hooks, SteeringPlan, Intervention), so it holds whatever the
runtime does inside: every site and kind, few rows (the fused linear) and many, both ops
backends; plus an fp64 gradcheck of the patched model w.r.t. the embedding weight.
"""

import functools

import pytest
import torch

import steerfast
from steerfast import Intervention, SteeringPlan, ops
from steerfast.testing import random_plan, tiny_model
from steerfast.tokens import left_padded


@functools.cache
def _model(arch, seed=0, **kw):
    return tiny_model(arch, seed=seed, **kw)  # patch() reverts exactly: safe to share


SITES = ["embed.out", "attn.heads", "attn.out", "mlp.neurons", "mlp.out"]


@pytest.fixture
def backend(request):
    ops.set_backend(request.param)
    yield request.param
    ops.set_backend("auto")


def _site_plan(model, site, kind, seed=0):
    g = torch.Generator().manual_seed(seed)
    layer = 0 if site == "embed.out" else 1
    if site == "attn.heads":
        dim = model.model.layers[layer].self_attn.o_proj.in_features
    elif site == "mlp.neurons":
        dim = model.config.intermediate_size
    else:
        dim = model.config.hidden_size
    t = torch.randn(1, dim, generator=g) if kind == "add" else (torch.rand(1, dim, generator=g) > 0.5).float()
    ivs = [
        Intervention(layer, site, kind, t, "all", 1.5 if kind == "add" else -0.6),
        Intervention(layer, site, kind, t.flip(1), "prompt_last", 0.8),
    ]
    return SteeringPlan(ivs, "grad-test")


def _batch(rows):
    ids, mask, _ = left_padded(rows)
    return ids, mask


def _param_grads(model, ids, mask):
    model.zero_grad(set_to_none=True)
    logits = model(input_ids=ids, attention_mask=mask).logits
    weight = torch.linspace(-1, 1, logits.numel(), dtype=logits.dtype).view_as(logits)
    (logits * weight * mask.unsqueeze(-1)).sum().backward()
    return logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _check_same_grads(model, plan, ids, mask):
    with steerfast.patch(model, plan):
        out_p, grads_p = _param_grads(model, ids, mask)
    with steerfast.apply_hooks(model, plan):
        out_h, grads_h = _param_grads(model, ids, mask)
    torch.testing.assert_close(out_p, out_h, rtol=1e-5, atol=1e-5)
    assert grads_p.keys() == grads_h.keys(), sorted(set(grads_h) ^ set(grads_p))
    for name in grads_h:
        torch.testing.assert_close(
            grads_p[name], grads_h[name], rtol=1e-4, atol=1e-5, msg=lambda m: f"{name}: {m}"
        )


# 1 row x 4 tokens = 4 rows (the fused linear runs), 2 x 7 = 14 rows (the row op runs)
BATCHES = {"few_rows": [[5, 9, 12, 7]], "many_rows": [[5, 9, 12, 7, 3, 8, 4], [11, 6, 2]]}


@pytest.mark.parametrize("backend", ["fused"], indirect=True)  # the reference: random plan below
@pytest.mark.parametrize("batch", sorted(BATCHES))
@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("kind", ["add", "scale"])
def test_param_grads_patched_equal_hooks(backend, batch, site, kind):
    model = _model("llama")
    ids, mask = _batch(BATCHES[batch])
    _check_same_grads(model, _site_plan(model, site, kind), ids, mask)


@pytest.mark.parametrize("backend", ["fused", "reference"], indirect=True)
@pytest.mark.parametrize("batch", sorted(BATCHES))
def test_param_grads_random_plan(backend, batch):
    model = _model("qwen2", seed=3)
    ids, mask = _batch(BATCHES[batch])
    _check_same_grads(model, random_plan(model, seed=4), ids, mask)


@pytest.mark.parametrize("backend", ["fused", "reference"], indirect=True)
@pytest.mark.parametrize("kind", ["add", "scale"])
def test_gradcheck_patched_fp64(backend, kind):
    model = tiny_model("llama", dtype=torch.float64, num_hidden_layers=2)
    ids, mask = _batch([[5, 9, 12, 7, 3], [11, 6]])
    ivs = [iv for site in SITES for iv in _site_plan(model, site, kind).interventions]
    plan = SteeringPlan(ivs, "grad-test")
    w0 = model.model.embed_tokens.weight.detach().clone().requires_grad_()

    def f(w):
        logits = torch.func.functional_call(
            model, {"model.embed_tokens.weight": w}, kwargs=dict(input_ids=ids, attention_mask=mask)
        ).logits
        return logits * mask.unsqueeze(-1)

    with steerfast.patch(model, plan):
        assert torch.autograd.gradcheck(f, (w0,), fast_mode=True)
