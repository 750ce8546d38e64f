"""Every supported architecture as a tiny random model: patched == hooks, generate, and the
meaning of the residual sites (an add there is an add to the residual stream)."""

import pytest
import torch
from transformers import StaticCache

import steerfast
from steerfast.adapters import get_adapter
from steerfast.errors import PlanError, UnsupportedModelError
from steerfast.plan import Intervention, SteeringPlan
from steerfast.testing import TINY_ARCHS, random_plan, tiny_model
from steerfast.tokens import left_padded

ROWS = [[5, 9, 17, 33, 2, 7, 11, 64, 3], [40, 41, 42, 43], [7, 7, 100], [90, 12, 13, 14, 15, 16, 17]]
POST_NORM = {"gemma2", "gemma3_text", "olmo2"}


def logits(model, ids, mask, pos):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, position_ids=pos).logits


@pytest.fixture(scope="module", params=TINY_ARCHS)
def arch_model(request):
    return request.param, tiny_model(request.param, seed=11)


def test_patched_equals_hooks_every_policy(arch_model):
    arch, model = arch_model
    ids, mask, pos = left_padded(ROWS)
    real = mask.bool()
    base = logits(model, ids, mask, pos)
    for seed, policies in enumerate(
        [
            ("prefix:3", "from_prompt_end", "prompt_last", "all", "last"),
            ("all", "last", "prefix:2", "prompt_last", "from_prompt_end"),
        ]
    ):
        plan = random_plan(model, seed=seed, policies=policies)
        with steerfast.patch(model, plan):
            fused = logits(model, ids, mask, pos)
        with steerfast.apply_hooks(model, plan):
            hooked = logits(model, ids, mask, pos)
        assert (fused - hooked)[real].abs().max().item() <= 1e-5, arch
        assert (fused - base)[real].abs().max().item() > 1e-2, "the plan must change the logits"
    assert torch.equal(logits(model, ids, mask, pos), base), "revert restores the model exactly"


def test_generate_token_identical_dynamic_and_static_cache(arch_model):
    """patched == hooks with each cache; and the two caches agree with each other, which the
    oracle alone cannot show (both read positions through the same tracker)."""
    arch, model = arch_model
    plan = random_plan(model, seed=4)
    ids, mask, _ = left_padded(ROWS)
    n = 12

    def run(cache):
        kw = dict(
            attention_mask=mask,
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=False,
            pad_token_id=0,
            output_logits=True,
            return_dict_in_generate=True,
        )
        if cache == "static":
            kw["past_key_values"] = StaticCache(config=model.config, max_cache_len=ids.shape[1] + n)
        with torch.no_grad():
            return model.generate(ids, **kw)

    runs = {}
    for cache in ("dynamic", "static"):
        plain = run(cache)
        with steerfast.patch(model, plan):
            fused = run(cache)
        with steerfast.apply_hooks(model, plan):
            hooked = run(cache)
        assert torch.equal(fused.sequences, hooked.sequences), (arch, cache)
        assert not torch.equal(fused.sequences, plain.sequences)
        runs[cache] = fused
    dyn, sta = runs["dynamic"], runs["static"]
    first = next(
        (i for i, (a, b) in enumerate(zip(dyn.sequences.T, sta.sequences.T)) if not torch.equal(a, b)), None
    )
    steps = n if first is None else first - ids.shape[1]  # compare logits up to any divergence
    for a, b in list(zip(dyn.logits, sta.logits))[: max(steps, 1)]:
        assert (a - b).abs().max().item() <= 1e-4, arch


def _layer_input_add(model, layer, vec):
    """The oracle: a forward pre-hook adding `vec` to decoder layer `layer`'s input."""
    module = get_adapter(model).layer_modules(model)[layer]

    def pre(mod, args, kwargs):
        if args:
            return (args[0] + vec,) + tuple(args[1:]), kwargs
        return args, {**kwargs, "hidden_states": kwargs["hidden_states"] + vec}

    return module.register_forward_pre_hook(pre, with_kwargs=True)


def _add_plan(model, layer, site, vec, strength=1.0):
    return SteeringPlan([Intervention(layer, site, "add", vec, "all", strength)], "meaning")


def test_residual_sites_add_to_the_stream(arch_model):
    """mlp.out of layer l-1 (embed.out for l = 0) == an add to the input of decoder layer l."""
    arch, model = arch_model
    ids, mask, pos = left_padded(ROWS)
    real = mask.bool()
    d = get_adapter(model).site_dim(model, 0, "mlp.out")
    vec = torch.randn(d, generator=torch.Generator().manual_seed(3))
    for layer, (site_layer, site) in [(0, (0, "embed.out")), (1, (0, "mlp.out")), (2, (1, "mlp.out"))]:
        handle = _layer_input_add(model, layer, vec)
        want = logits(model, ids, mask, pos)
        handle.remove()
        with steerfast.patch(model, _add_plan(model, site_layer, site, vec)):
            got = logits(model, ids, mask, pos)
        assert (got - want)[real].abs().max().item() <= 1e-5, (arch, site, site_layer)


def test_attn_out_adds_to_the_stream(arch_model):
    """attn.out of layer l == an add to the stream after the attention branch.

    With the layer's MLP branch silenced (its output zeroed), the stream after attention is
    the layer's output, i.e. the next layer's input; parallel blocks need no silencing.
    """
    arch, model = arch_model
    adapter = get_adapter(model)
    ids, mask, pos = left_padded(ROWS)
    real = mask.bool()
    d = adapter.site_dim(model, 0, "attn.out")
    vec = torch.randn(d, generator=torch.Generator().manual_seed(5))
    mlp = adapter.layer_modules(model)[0].get_submodule(adapter.mlp_block)

    def silence(mod, args, out):
        return (
            tuple(torch.zeros_like(o) if torch.is_tensor(o) else o for o in out)
            if isinstance(out, tuple)
            else torch.zeros_like(out)
        )

    silenced = None if adapter.parallel else mlp.register_forward_hook(silence)
    try:
        handle = _layer_input_add(model, 1, vec)
        want = logits(model, ids, mask, pos)
        handle.remove()
        with steerfast.patch(model, _add_plan(model, 0, "attn.out", vec)):
            got = logits(model, ids, mask, pos)
    finally:
        if silenced is not None:
            silenced.remove()
    assert (got - want)[real].abs().max().item() <= 1e-5, arch


def test_residual_add_grows_linearly_on_post_norm_models():
    """On post-norm models a CAA add at mlp.out is not normalised away."""
    model = tiny_model("gemma2", seed=2)
    ids, mask, pos = left_padded(ROWS[:1])
    vec = torch.randn(64, generator=torch.Generator().manual_seed(0))
    seen = []
    layer2 = get_adapter(model).layer_modules(model)[2]
    h = layer2.register_forward_pre_hook(
        lambda m, a, k: seen.append((a[0] if a else k["hidden_states"]).clone()), with_kwargs=True
    )
    logits(model, ids, mask, pos)
    base = seen.pop()
    norms = []
    for c in (0.5, 2.0, 8.0):
        with steerfast.patch(model, _add_plan(model, 1, "mlp.out", vec, c)):
            logits(model, ids, mask, pos)
        norms.append((seen.pop() - base).norm(dim=-1).mean().item())
    h.remove()
    assert norms[1] / norms[0] == pytest.approx(4.0, rel=1e-4)
    assert norms[2] / norms[0] == pytest.approx(16.0, rel=1e-4)


def test_realisations_are_visible():
    model = tiny_model("gemma2", seed=1)
    plan = random_plan(model, seed=1)
    with steerfast.patch(model, plan) as handle:
        rows = {r["module"]: r["realisation"] for r in handle.describe()}
    assert rows["model.embed_tokens"] == "wrapped"
    assert rows["model.layers.1.post_attention_layernorm"] == "wrapped"
    assert rows["model.layers.2.self_attn.o_proj"] == "fast"
    assert rows["model.layers.1.mlp.down_proj"] == "fast"


@pytest.mark.parametrize("arch", ["mixtral", "qwen2_moe", "qwen3_moe"])
def test_fused_experts_refuse_neurons(arch):
    model = tiny_model(arch, seed=0)
    plan = SteeringPlan([Intervention(0, "mlp.neurons", "scale", torch.ones(32), "all", 1.0)], "x")
    with pytest.raises(PlanError, match="fused experts"):
        steerfast.patch(model, plan)
    assert getattr(model, "_steerfast_handle", None) is None


def test_unknown_architecture_names_the_supported_ones_and_the_way_out():
    model = tiny_model("llama", seed=0)
    model.config.model_type = "not_a_model"
    plan = SteeringPlan([Intervention(0, "mlp.out", "add", torch.ones(64), "all", 1.0)], "x")
    with pytest.raises(UnsupportedModelError, match="register_architecture") as err:
        steerfast.patch(model, plan)
    assert "gpt2" in str(err.value) and "gemma3_text" in str(err.value)


def test_register_architecture_describes_a_new_model():
    model = tiny_model("llama", seed=0)
    model.config.model_type = "my_llama"
    steerfast.register_architecture("my_llama", steerfast.Adapter())
    try:
        plan = random_plan(model, seed=3)
        ids, mask, pos = left_padded(ROWS)
        with steerfast.patch(model, plan):
            fused = logits(model, ids, mask, pos)
        with steerfast.apply_hooks(model, plan):
            hooked = logits(model, ids, mask, pos)
        assert (fused - hooked)[mask.bool()].abs().max().item() <= 1e-5
    finally:
        from steerfast.adapters import REGISTRY

        REGISTRY.pop("my_llama")


@pytest.mark.parametrize("arch", ["gemma2", "gpt2", "mixtral"])
def test_sadi_capture_reads_the_same_sites(arch):
    """SADI-Hidden's calibration reads the residual delta the runtime steers (post-norm outputs
    on gemma2, Conv1D on gpt2, the MoE block on mixtral); SADI-Neuron is refused on fused experts."""
    from steerfast.recipes import sadi
    from steerfast.testing import tiny_tokenizer

    model, tok = tiny_model(arch, seed=3), tiny_tokenizer()
    pairs = [("ab c", "ab d"), ("x y z", "x y w"), ("hello", "help")]
    plan = sadi(model, tok, pairs, element="hidden", k=3, delta=1.0, progress=False).plan
    ids, mask, pos = left_padded(ROWS)
    with steerfast.patch(model, plan):
        fused = logits(model, ids, mask, pos)
    with steerfast.apply_hooks(model, plan):
        hooked = logits(model, ids, mask, pos)
    assert (fused - hooked)[mask.bool()].abs().max().item() <= 1e-5
    if arch == "mixtral":
        with pytest.raises(PlanError, match="fused experts"):
            sadi(model, tok, pairs, element="neuron", k=3, progress=False)
