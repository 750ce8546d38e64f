"""LAAI's trained Δ_l (one vector per layer at the attention output projection's input) as
plan interventions with exactly the effect training optimised (recipes/laai.py)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..adapters import get_adapter
from ..plan import Intervention


def fold(model: nn.Module, deltas: dict[int, Tensor], positions: str = "prompt_last") -> list[Intervention]:
    """The plan of the trained Δ_l, with the effect training optimised: Δ_l added at the input of
    layer l's attention output projection.

    Where that projection is a plain nn.Linear whose output reaches the stream as is (no branch
    post-norm, no residual multiplier) Δ_l folds into an add of W_o Δ_l at attn.out, which the
    runtime rides on the projection's bias; elsewhere (Gemma 2/3 and OLMo 2 post-norms, Granite's
    multiplier, GPT-2's Conv1D, quantised or wrapped layers) it stays an add of Δ_l at attn.heads,
    the projection's input, exactly where it was trained.
    """
    adapter = get_adapter(model)
    out = []
    for layer, delta in sorted(deltas.items()):
        proj = adapter.projection(model, layer, "attn")
        if (
            type(proj) is nn.Linear
            and adapter.attn_out == adapter.attn_heads
            and adapter.residual_multiplier is None
        ):
            with torch.no_grad():
                vec = proj.weight.double() @ delta.detach().double().to(proj.weight.device)
            out.append(Intervention(layer, "attn.out", "add", vec.float().cpu(), positions, 1.0))
        else:
            out.append(Intervention(layer, "attn.heads", "add", delta.detach().float().cpu(), positions, 1.0))
    return out


__all__ = ["fold"]
