"""Per-architecture adapters: where the steering sites live in each HF model type.

A site is one of:
    embed.out    output of the token embedding (the residual stream entering layer 0)
    attn.heads   input of the attention output projection, viewed (rows, H, d_head)
    attn.out     output of the attention output projection
    mlp.neurons  input of the MLP down projection
    mlp.out      output of the MLP down projection (before the residual add)
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .errors import PlanError, UnsupportedModelError

SITES = ("embed.out", "attn.heads", "attn.out", "mlp.neurons", "mlp.out")
# sites realised on a projection's input (prologue) vs its output (epilogue)
INPUT_SITES = {"attn.heads": "attn", "mlp.neurons": "mlp"}
OUTPUT_SITES = {"attn.out": "attn", "mlp.out": "mlp"}


@dataclass(frozen=True)
class Adapter:
    base: str = "model"                 # the decoder stack (sees attention_mask, cache)
    layers: str = "model.layers"
    embed: str = "model.embed_tokens"
    attn_proj: str = "self_attn.o_proj"  # relative to a layer
    mlp_proj: str = "mlp.down_proj"
    mlp_act: str = "mlp.act_fn"          # the activation whose output SADI ranks

    def layer_modules(self, model: nn.Module) -> nn.ModuleList:
        return model.get_submodule(self.layers)

    def projection(self, model: nn.Module, layer: int, part: str) -> nn.Linear:
        name = self.attn_proj if part == "attn" else self.mlp_proj
        return self.layer_modules(model)[layer].get_submodule(name)

    def site_module(self, model: nn.Module, layer: int, site: str) -> nn.Module:
        if site == "embed.out":
            return model.get_submodule(self.embed)
        part = INPUT_SITES.get(site) or OUTPUT_SITES[site]
        return self.projection(model, layer, part)

    def site_dim(self, model: nn.Module, layer: int, site: str) -> int:
        mod = self.site_module(model, layer, site)
        if site == "embed.out":
            return mod.embedding_dim
        return mod.in_features if site in INPUT_SITES else mod.out_features

    def num_layers(self, model: nn.Module) -> int:
        return len(self.layer_modules(model))


_LLAMA_LIKE = Adapter()
REGISTRY: dict[str, Adapter] = {
    "llama": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    "qwen2": _LLAMA_LIKE,
    "qwen3": _LLAMA_LIKE,
}


def get_adapter(model: nn.Module) -> Adapter:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in REGISTRY:
        raise UnsupportedModelError(
            f"model type {model_type!r} is not supported; supported: {', '.join(sorted(REGISTRY))}"
        )
    return REGISTRY[model_type]


def head_layout(model: nn.Module) -> tuple[int, int]:
    """(num_heads, head_dim) of the attention output projection's input."""
    cfg = model.config
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    return heads, head_dim


def residual_input_site(layer: int) -> tuple[int, str]:
    """The site whose output *is* the residual stream entering `layer`.

    Adding v to mlp.out of layer l-1 adds v to the stream entering layer l; layer 0's
    input is the embedding output.
    """
    if layer < 0:
        raise PlanError(f"layer must be >= 0, got {layer}")
    return (0, "embed.out") if layer == 0 else (layer - 1, "mlp.out")
