"""The ops seam: every steered forward calls these; they dispatch to a backend.

Backends: "fused" (torch.ops.steerfast.*: C++ on CPU, Triton on CUDA) and "reference"
(steerfast.ops.reference). `set_backend` switches for comparison; "auto" picks fused when
the compiled ops are available.
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor

from . import reference

_BACKEND = "reference"


def set_backend(name: str) -> None:
    global _BACKEND
    if name not in ("reference", "fused", "auto"):
        raise ValueError(f"unknown ops backend {name!r}; choose 'reference', 'fused' or 'auto'")
    if name == "fused":
        raise RuntimeError("the fused ops are not available in this build")
    _BACKEND = "reference"


def get_backend() -> str:
    return _BACKEND


def steer_rows_(y: Tensor, slots: Tensor, mask: Optional[Tensor], delta: Optional[Tensor],
                bias: Optional[Tensor], coef: Optional[Tensor]) -> None:
    reference.steer_rows_ref_(y, slots, mask, delta, bias, coef)


def steer_linear(x: Tensor, weight: Tensor, lin_bias: Optional[Tensor], slots: Tensor,
                 in_mask: Optional[Tensor], in_delta: Optional[Tensor], out_mask: Optional[Tensor],
                 out_delta: Optional[Tensor], out_bias: Optional[Tensor],
                 out_coef: Optional[Tensor]) -> Tensor:
    return reference.steer_linear_ref(x, weight, lin_bias, slots, in_mask, in_delta,
                                      out_mask, out_delta, out_bias, out_coef)
