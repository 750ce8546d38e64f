"""Test fixtures users can build on too: tiny random-init models with each supported
architecture's real module names, a character tokenizer that fits them, and a random plan
touching every site kind (re-exported from steerfast.bench.plans, the one plan factory of
tests and benchmarks)."""

from __future__ import annotations

import torch

from .bench.plans import random_plan
from .errors import ModelNotFoundError

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


__all__ = ["tiny_model", "tiny_tokenizer", "TINY_ARCHS", "random_plan"]
