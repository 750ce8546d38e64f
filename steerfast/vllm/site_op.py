"""The compiled graph's call into the bank (compiled_edit "op"): one opaque in-place op per
hooked site.

vLLM traces the forward once and drops Dynamo's guards, so nothing the host decides per step
may be traced in. An opaque custom op is not traced: its body runs every step, so it can
branch on the bank's host flags (any steered token this step, which lanes and parts the loaded
configurations use) exactly as an eager step does, and an idle site costs one call. Under
CUDA graphs the body would be frozen at capture, so it is for CPU or eager engines; the
default, data-only traced form (bank.py) is CUDA-graph safe, and on CPU it is as fast idle
and faster steered (Inductor fuses it; the op pays a Python call per site).

Semantics: steerfast_vllm::edit_(y, site) == the bank's eager edit of hooked site `site` on
y, in place (y's values are replaced; its storage is kept).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

_EDITORS: dict[str, Callable[[Tensor], Tensor]] = {}


def register(key: str, editor: Callable[[Tensor], Tensor]) -> None:
    """`editor(y)` edits y's steered rows and returns the edited tensor (y itself when y is
    contiguous)."""
    _EDITORS[key] = editor


def unregister(key: str) -> None:
    _EDITORS.pop(key, None)


@torch.library.custom_op("steerfast_vllm::edit_", mutates_args=("y",))
def edit_(y: Tensor, site: str) -> None:
    out = _EDITORS[site](y)
    if out is not y:  # y was not contiguous: the editor worked on a copy
        y.copy_(out)


@edit_.register_fake
def _(y: Tensor, site: str) -> None:
    return None
