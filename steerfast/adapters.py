"""Where the steering sites live in each architecture, and what they mean.

One table row per HF `model_type` (in the spirit of pyvene's per-model tables and PEFT's
target-module mapping). The runtime, the hook oracle and the recipes' capture all resolve
sites through `Adapter.site`, so one place knows where the sites are.

Sites and their meaning on every architecture:
    embed.out    the residual stream entering layer 0 (after any embedding scale / position add)
    attn.heads   input of the attention output projection, (rows, H * d_head)
    attn.out     the attention branch's contribution to the residual stream
    mlp.neurons  input of the MLP down projection (act(gate) * up)
    mlp.out      the MLP branch's contribution to the residual stream

`attn.out` / `mlp.out` / `embed.out` are *residual* sites: an `add` there adds the vector to the
stream. Where an architecture normalises a branch after its projection (Gemma 2/3, OLMo 2
post-norms) the site is the post-norm's output; where it scales a branch (Granite's
`residual_multiplier`, `embedding_multiplier`) the add is divided by that multiplier so the
stream still moves by exactly the vector; on MoE models `mlp.out` is the MoE block's output.
This is decided per model type from the modelling code's structure, not from module names:
`post_attention_layernorm` is the MLP's pre-norm in llama and a branch post-norm in gemma2.

An unsupported model can be described by the user:

    steerfast.register_architecture("my_type", Adapter(layers="model.layers", ...))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .errors import PlanError, UnsupportedModelError

SITES = ("embed.out", "attn.heads", "attn.out", "mlp.neurons", "mlp.out")
# sites realised on a module's input (prologue) vs its output (epilogue)
INPUT_SITES = {"attn.heads": "attn", "mlp.neurons": "mlp"}
OUTPUT_SITES = {"attn.out": "attn", "mlp.out": "mlp"}


@dataclass(frozen=True)
class Site:
    """One site resolved on a model: the module, the side it acts on, and `add_scale`, the
    factor an additive table is multiplied by so the residual stream moves by the vector."""

    module: nn.Module
    side: str  # "in" | "out"
    add_scale: float = 1.0


@dataclass(frozen=True)
class Adapter:
    """Module paths of one architecture. Layer-relative paths start after `layers.<i>.`.

    base:          the decoder stack (its forward sees input_ids / attention_mask / cache)
    embed:         the module whose output is the stream entering layer 0
    attn_heads:    the attention output projection (its input is the merged heads)
    attn_out:      the module whose output is added to the stream by the attention branch
    mlp_neurons:   the MLP down projection (its input is the neurons); None where the
                   architecture has no single one (fused MoE experts)
    mlp_out:       the module whose output is added to the stream by the MLP branch
    mlp_block:     the whole MLP branch (used by tests to silence it)
    mlp_act:       the activation whose output SADI ranks (None: not expressible)
    parallel:      attention and MLP both read the layer's input (no stream between them)
    embed_multiplier / residual_multiplier: config attributes scaling the embedding / the
                   branch outputs before they reach the stream (Granite)
    """

    base: str = "model"
    layers: str = "model.layers"
    embed: str = "model.embed_tokens"
    attn_heads: str = "self_attn.o_proj"
    attn_out: str = "self_attn.o_proj"
    mlp_neurons: str | None = "mlp.down_proj"
    mlp_out: str = "mlp.down_proj"
    mlp_block: str = "mlp"
    mlp_act: str | None = "mlp.act_fn"
    parallel: bool = False
    embed_multiplier: str | None = None
    residual_multiplier: str | None = None

    # --- compatibility names used by recipes --------------------------------------------
    @property
    def attn_proj(self) -> str:
        return self.attn_heads

    @property
    def mlp_proj(self) -> str | None:
        return self.mlp_neurons

    def layer_modules(self, model: nn.Module) -> nn.ModuleList:
        return model.get_submodule(self.layers)

    def num_layers(self, model: nn.Module) -> int:
        return len(self.layer_modules(model))

    def _layer_path(self, model: nn.Module, layer: int, path: str | None, site: str) -> nn.Module:
        n = self.num_layers(model)
        if not 0 <= layer < n:
            raise PlanError(f"layer {layer} out of range; the model has {n} layers (0..{n - 1})")
        if path is None:
            raise PlanError(
                f"site {site!r} cannot be expressed on {model.config.model_type!r}: "
                "its MLP has no single down projection (fused experts)"
            )
        try:
            return self.layer_modules(model)[layer].get_submodule(path)
        except AttributeError as exc:
            raise PlanError(
                f"site {site!r} of layer {layer}: the model has no module {path!r} there ({exc})"
            ) from None

    def projection(self, model: nn.Module, layer: int, part: str) -> nn.Module:
        """The attention output projection (part='attn') or MLP down projection ('mlp')."""
        site = "attn.heads" if part == "attn" else "mlp.neurons"
        return self._layer_path(model, layer, self.attn_heads if part == "attn" else self.mlp_neurons, site)

    def _multiplier(self, model: nn.Module, attr: str | None) -> float:
        if attr is None:
            return 1.0
        value = float(getattr(model.config, attr, 1.0) or 1.0)
        if value == 0.0:
            raise PlanError(f"{model.config.model_type}: {attr} is 0, the branch never reaches the stream")
        return value

    def site(self, model: nn.Module, layer: int, site: str) -> Site:
        if site == "embed.out":
            return Site(
                model.get_submodule(self.embed), "out", 1.0 / self._multiplier(model, self.embed_multiplier)
            )
        if site == "attn.heads":
            return Site(self._layer_path(model, layer, self.attn_heads, site), "in")
        if site == "mlp.neurons":
            return Site(self._layer_path(model, layer, self.mlp_neurons, site), "in")
        if site in OUTPUT_SITES:
            path = self.attn_out if site == "attn.out" else self.mlp_out
            return Site(
                self._layer_path(model, layer, path, site),
                "out",
                1.0 / self._multiplier(model, self.residual_multiplier),
            )
        raise PlanError(f"unknown site {site!r}; expected one of {', '.join(SITES)}")

    def site_module(self, model: nn.Module, layer: int, site: str) -> nn.Module:
        return self.site(model, layer, site).module

    def site_dim(self, model: nn.Module, layer: int, site: str) -> int:
        if site in OUTPUT_SITES or site == "embed.out":
            return hidden_size(model)
        if site == "attn.heads":
            heads, head_dim = head_layout(model)
            return heads * head_dim
        return _in_features(self.site(model, layer, site).module)


def _in_features(module: nn.Module) -> int:
    if hasattr(module, "in_features"):  # Linear, PEFT / bitsandbytes wrappers
        return int(module.in_features)
    if hasattr(module, "nx"):  # transformers' Conv1D (GPT-2)
        return int(module.nx)
    raise PlanError(f"cannot tell the input width of {type(module).__name__}")


_LLAMA = Adapter()
_POST_NORM = Adapter(attn_out="post_attention_layernorm", mlp_out="post_feedforward_layernorm")
_MOE = Adapter(mlp_neurons=None, mlp_out="mlp", mlp_act=None)

REGISTRY: dict[str, Adapter] = {
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "qwen3": _LLAMA,
    "gemma": _LLAMA,
    "phi3": Adapter(mlp_act="mlp.activation_fn"),
    "starcoder2": Adapter(mlp_neurons="mlp.c_proj", mlp_out="mlp.c_proj", mlp_act="mlp.act"),
    "cohere": Adapter(parallel=True),
    "granite": Adapter(embed_multiplier="embedding_multiplier", residual_multiplier="residual_multiplier"),
    "gemma2": _POST_NORM,
    "gemma3_text": _POST_NORM,
    "olmo2": _POST_NORM,
    "phi": Adapter(
        attn_heads="self_attn.dense",
        attn_out="self_attn.dense",
        mlp_neurons="mlp.fc2",
        mlp_out="mlp.fc2",
        mlp_act="mlp.activation_fn",
        parallel=True,
    ),
    "gpt2": Adapter(
        base="transformer",
        layers="transformer.h",
        embed="transformer.drop",
        attn_heads="attn.c_proj",
        attn_out="attn.c_proj",
        mlp_neurons="mlp.c_proj",
        mlp_out="mlp.c_proj",
        mlp_act="mlp.act",
    ),
    "gpt_neox": Adapter(
        base="gpt_neox",
        layers="gpt_neox.layers",
        embed="gpt_neox.embed_in",
        attn_heads="attention.dense",
        attn_out="attention.dense",
        mlp_neurons="mlp.dense_4h_to_h",
        mlp_out="mlp.dense_4h_to_h",
        mlp_act="mlp.act",
        parallel=True,
    ),
    "falcon": Adapter(
        base="transformer",
        layers="transformer.h",
        embed="transformer.word_embeddings",
        attn_heads="self_attention.dense",
        attn_out="self_attention.dense",
        mlp_neurons="mlp.dense_4h_to_h",
        mlp_out="mlp.dense_4h_to_h",
        mlp_act="mlp.act",
        parallel=True,
    ),
    "mixtral": _MOE,
    "qwen2_moe": _MOE,
    "qwen3_moe": _MOE,
}


def register_architecture(model_type: str, adapter: Adapter) -> None:
    """Describe the sites of a model type steerfast does not know (see the module docstring)."""
    if not isinstance(adapter, Adapter):
        raise UnsupportedModelError(f"register_architecture needs an Adapter, got {type(adapter).__name__}")
    REGISTRY[model_type] = adapter


def get_adapter(model: nn.Module) -> Adapter:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in REGISTRY:
        raise UnsupportedModelError(
            f"model type {model_type!r} is not supported; supported: {', '.join(sorted(REGISTRY))}. "
            "Describe its sites with steerfast.register_architecture(model_type, Adapter(...)) "
            "(see steerfast/adapters.py and docs/architectures.md)"
        )
    adapter = REGISTRY[model_type]
    try:
        model.get_submodule(adapter.base)
    except AttributeError:
        raise UnsupportedModelError(
            f"{type(model).__name__} has no {adapter.base!r} submodule: steerfast steers the causal-LM model "
            f"with its LM head (e.g. AutoModelForCausalLM), not the bare decoder stack"
        ) from None
    if model_type == "falcon" and not _falcon_parallel(model.config):
        adapter = Adapter(**{**adapter.__dict__, "parallel": False})
    if model_type == "gpt_neox" and not getattr(model.config, "use_parallel_residual", True):
        adapter = Adapter(**{**adapter.__dict__, "parallel": False})
    return adapter


def _falcon_parallel(cfg) -> bool:
    return bool(getattr(cfg, "new_decoder_architecture", False) or getattr(cfg, "parallel_attn", True))


def execution_device(model: nn.Module) -> torch.device:
    """Where the model computes: the first materialised parameter (accelerate may leave some on meta)."""
    for p in model.parameters():
        if not p.is_meta:
            return p.device
    return torch.device("cpu")


def hidden_size(model: nn.Module) -> int:
    cfg = model.config
    return int(getattr(cfg, "hidden_size", None) or cfg.n_embd)


def head_layout(model: nn.Module) -> tuple[int, int]:
    """(num_heads, head_dim) of the attention output projection's input."""
    cfg = model.config
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or hidden_size(model) // heads
    return heads, head_dim


def residual_input_site(layer: int) -> tuple[int, str]:
    """The site whose output *is* the residual stream entering `layer`.

    Adding v to mlp.out of layer l-1 adds v to the stream entering layer l; layer 0's
    input is the embedding output.
    """
    if layer < 0:
        raise PlanError(f"layer must be >= 0, got {layer}")
    return (0, "embed.out") if layer == 0 else (layer - 1, "mlp.out")
