"""Test fixtures users can build on too: tiny random-init models with each supported
architecture's real module names, a character tokenizer that fits them, and a random plan
touching every site kind (`random_plan`: the tests' workhorse; steerfast.bench.plans re-exports
it, so tests and benchmarks reach it downward)."""

from __future__ import annotations

import torch

from .adapters import get_adapter
from .errors import ModelNotFoundError
from .plan import Intervention, SteeringPlan

# --- tiny random-init models --------------------------------------------------
_TINY = dict(
    vocab_size=128,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=128,
    pad_token_id=0,
    eos_token_id=1,
    bos_token_id=2,
)
# per-architecture settings: the same small shapes under each family's own config names
_TINY_ARCH = {
    "qwen3": dict(head_dim=16),
    "gemma": dict(head_dim=16),
    "gemma2": dict(head_dim=16),
    "gemma3_text": dict(head_dim=16, sliding_window=8),
    "gpt2": dict(n_inner=96),
    "mixtral": dict(num_local_experts=4, num_experts_per_tok=2),
    "qwen2_moe": dict(
        num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32, shared_expert_intermediate_size=48
    ),
    "qwen3_moe": dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32, head_dim=16),
    "granite": dict(residual_multiplier=0.5, embedding_multiplier=3.0),
}
TINY_ARCHS = (
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "gemma",
    "gemma2",
    "gemma3_text",
    "olmo2",
    "phi3",
    "phi",
    "gpt2",
    "gpt_neox",
    "falcon",
    "starcoder2",
    "cohere",
    "granite",
    "mixtral",
    "qwen2_moe",
    "qwen3_moe",
)


def tiny_model(arch: str = "llama", seed: int = 0, dtype=torch.float32, **overrides):
    """A small random-init causal LM with the real module names of `arch`."""
    from transformers import AutoConfig, AutoModelForCausalLM

    kw = dict(_TINY, **_TINY_ARCH.get(arch, {}), **overrides)
    try:
        config = AutoConfig.for_model(arch, **kw)
    except ValueError as exc:
        raise ModelNotFoundError(f"unknown architecture {arch!r}: {exc}") from exc
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.eval()
    return model


def tiny_tokenizer():
    """A character-level tokenizer whose ids fit the tiny models' vocabulary (128)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = [chr(c) for c in range(32, 127)]  # printable ASCII
    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, **{c: i + 3 for i, c in enumerate(chars)}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>"
    )


def random_plan(model, seed=0, policies=("prefix:3", "from_prompt_end", "prompt_last", "all", "last")):
    """A plan touching every site kind of a model, with the given position policies."""
    g = torch.Generator().manual_seed(seed)
    adapter = get_adapter(model)
    h = adapter.site_dim(model, 0, "mlp.out")
    heads_dim = adapter.site_dim(model, 0, "attn.heads")
    L = adapter.num_layers(model)
    p = list(policies) * 3

    def rows(policy, dim):
        n = int(policy.split(":")[1]) if policy.startswith("prefix") else 1
        return torch.randn(n, dim, generator=g)

    def mask(policy, dim):
        return (rows(policy, dim) > 0.3).float()

    ivs = [
        Intervention(0, "embed.out", "add", rows(p[0], h), p[0], 2.0),
        Intervention(0, "mlp.out", "add", rows(p[1], h), p[1], 3.0),
        Intervention(L - 1, "attn.heads", "scale", mask(p[2], heads_dim), p[2], 4.0),
        Intervention(
            1, "mlp.neurons", "scale", mask(p[3], adapter.site_dim(model, 1, "mlp.neurons")), p[3], -0.7
        )
        if adapter.mlp_neurons is not None
        else Intervention(1, "mlp.out", "scale", mask(p[3], h), p[3], -0.7),
        Intervention(1, "attn.out", "add", rows(p[4], h), p[4], 1.5),
        Intervention(L - 1, "mlp.out", "scale", mask(p[0], h), p[0], 0.5),
    ]
    return SteeringPlan(ivs, "test")


__all__ = ["tiny_model", "tiny_tokenizer", "TINY_ARCHS", "random_plan"]
