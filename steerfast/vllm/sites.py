"""Where steerfast's sites are in vLLM's models, and the hooks that edit them.

vLLM passes (hidden, residual) between layers and fuses the add into the next norm, so the
residual stream entering layer l is hidden + residual (layer 0: hidden alone). A residual
site is the tensor that is added to the stream, edited once (never both halves):

    site          Llama / Qwen2                      Gemma 3 (post-norms)
    embed.out     pre-hook on layers[0]: hidden      same (after vLLM's embedding scale)
    attn.heads    pre-hook on self_attn.o_proj       same
    attn.out      hook on self_attn (o_proj output)  hook on post_attention_layernorm
    mlp.neurons   pre-hook on mlp.down_proj          same
    mlp.out       hook on mlp (down_proj output)     hook on post_feedforward_layernorm

attn.out / mlp.out are read after o_proj / down_proj all-reduce (replicated under TP);
attn.heads / mlp.neurons are sharded: each rank edits its own columns of the tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import SteeringError

_RESIDUAL = {
    "llama": {"attn.out": "self_attn", "mlp.out": "mlp"},
    "qwen2": {"attn.out": "self_attn", "mlp.out": "mlp"},
    "gemma3_text": {"attn.out": "post_attention_layernorm", "mlp.out": "post_feedforward_layernorm"},
}
_INPUT = {"attn.heads": "self_attn.o_proj", "mlp.neurons": "mlp.down_proj"}
SUPPORTED = tuple(sorted(_RESIDUAL))


@dataclass(frozen=True)
class VSite:
    """One hooked site: the module, the hook kind ('pre' edits an input, 'post' the output,
    'layer' edits the hidden_states argument of a decoder layer) and the column shard."""

    module: nn.Module
    kind: str
    cols: slice | None = None  # this rank's columns of the full-width tables (TP)


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise SteeringError(f"{type(model).__name__}: no model.layers to steer")
    return layers


def resolve(model: nn.Module, model_type: str, layer: int, site: str, tp_size: int) -> VSite:
    if model_type not in _RESIDUAL:
        raise SteeringError(
            f"the steerfast vLLM plugin supports {', '.join(SUPPORTED)}; this model is {model_type!r}"
        )
    layers = decoder_layers(model)
    if not 0 <= layer < len(layers):
        raise SteeringError(f"layer {layer} out of range; the model has {len(layers)} layers")
    block = layers[layer]
    if type(block).__name__ == "PPMissingLayer":
        raise SteeringError("pipeline parallelism is not supported by the steerfast vLLM plugin")
    if site == "embed.out":
        return VSite(block, "layer")
    if site in _INPUT:
        proj = block.get_submodule(_INPUT[site])
        width = int(proj.input_size_per_partition)
        rank = int(getattr(proj, "tp_rank", 0))
        cols = slice(rank * width, (rank + 1) * width) if tp_size > 1 else None
        return VSite(proj, "pre", cols)
    return VSite(block.get_submodule(_RESIDUAL[model_type][site]), "post")


def install(vsite: VSite, edit) -> object:
    """Register the hook calling edit(tensor) -> tensor at `vsite`; returns its handle."""
    if vsite.kind == "post":

        def post(module, args, out):
            return edit(out)

        return vsite.module.register_forward_hook(post)
    if vsite.kind == "pre":

        def pre(module, args):
            return (edit(args[0]), *args[1:])

        return vsite.module.register_forward_pre_hook(pre)

    def layer_pre(module, args):  # (positions, hidden_states, residual): residual is None at layer 0
        return (args[0], edit(args[1]), *args[2:])

    return vsite.module.register_forward_pre_hook(layer_pre)
