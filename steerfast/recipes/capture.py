"""Reading activations during plain (unsteered) forward passes, for recipes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from ..adapters import get_adapter
from ..errors import PlanError
from ..tokens import batches, left_padded, tokenize_texts


@contextmanager
def residual_input(model: nn.Module, layer: int) -> Iterator[list]:
    """Collects the residual stream entering `layer` ((B, T, D) per forward) into a list."""
    adapter = get_adapter(model)
    n = adapter.num_layers(model)
    if not 0 <= layer < n:
        raise PlanError(f"layer {layer} out of range; the model has {n} layers (0..{n - 1})")
    seen: list[Tensor] = []

    def pre(mod, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        seen.append(hidden.detach())

    handle = adapter.layer_modules(model)[layer].register_forward_pre_hook(pre, with_kwargs=True)
    try:
        yield seen
    finally:
        handle.remove()


@torch.no_grad()
def last_token_residual(
    model,
    tokenizer,
    texts: Sequence[str],
    layer: int,
    batch_size: int = 16,
    desc: str = "forward",
    progress: bool = True,
) -> Tensor:
    """(len(texts), D) residual stream entering `layer` at each text's last token (fp32)."""
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rows = tokenize_texts(tokenizer, texts)
    out = []
    with residual_input(model, layer) as seen:
        for chunk in batches(rows, batch_size, desc, progress):
            ids, mask, pos = left_padded(chunk, pad, device)
            seen.clear()
            model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False)
            out.append(seen[0][:, -1].float())
    return torch.cat(out)
