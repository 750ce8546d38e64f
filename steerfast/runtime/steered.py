"""The steered forwards that replace `forward` on patched modules.

They read the row maps computed once per call (SteeringState) and call the ops; no
position logic, no per-layer Python beyond a list lookup.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import ops
from ..errors import SteeringError


@dataclass
class SideTables:
    """One lane's tables at one side of a module: (S*E, D) and (S*E,) fp32, None if unused."""
    mask: Optional[Tensor]
    delta: Optional[Tensor]
    bias: Optional[Tensor]
    coef: Optional[Tensor]


@dataclass
class Dense:
    """The whole-call realisation of one side: x -> x * scale + shift on every row.

    bias_only marks an output side with only a shift, which rides the projection's own
    bias (`linear_bias`, in the weight's dtype): zero extra ops.
    """
    scale: Optional[Tensor]
    shift: Optional[Tensor]
    linear_bias: Optional[Tensor] = None


@dataclass
class ModuleTables:
    """Per lane (index = lane), None where no loaded slot steers that side in that lane.

    dense_in / dense_out: the decode-phase realisation when one plan steers every row
    (see SteeringState.dense); None = that side is untouched in decode.
    """
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    dense_in: Optional[Dense] = None
    dense_out: Optional[Dense] = None


class SteeringState:
    """What the steered modules read in the current forward call.

    maps: row maps ((B*T,) int32 per lane, -1 = untouched).
    dense: True in a decode step (one new token per row, KV cache) of a one-plan patch:
    every policy then selects either every row or none, so each side is a plain
    whole-tensor op (or rides the projection's bias) and no row maps are needed.
    """

    def __init__(self):
        self.maps: list[Tensor] = []
        self.dense = False

    def lane(self, index: int, n_rows: int) -> Tensor:
        if index >= len(self.maps) or self.maps[index].shape[0] != n_rows:
            raise SteeringError("a steered module was called outside a forward of the patched "
                                f"model (no row map for lane {index} with {n_rows} rows)")
        return self.maps[index]


def _apply(state: SteeringState, rows: Tensor, lanes: list) -> None:
    for index, t in enumerate(lanes):
        if t is not None:
            ops.steer_rows_(rows, state.lane(index, rows.shape[0]), t.mask, t.delta, t.bias, t.coef)


def _dense_(rows: Tensor, d: Dense) -> Tensor:
    if d.scale is not None and d.shift is not None:
        return rows.copy_(torch.addcmul(d.shift, rows, d.scale))
    if d.scale is not None:
        return rows.mul_(d.scale)
    return rows.add_(d.shift)


def _dense_linear(module: nn.Linear, tables: ModuleTables, x: Tensor) -> Tensor:
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    if tables.dense_in is not None:
        if torch.is_grad_enabled() or not x.is_contiguous():
            x2 = x2.clone(memory_format=torch.contiguous_format)
        _dense_(x2, tables.dense_in)
    out = tables.dense_out
    if out is not None and out.linear_bias is not None:
        return F.linear(x2, module.weight, out.linear_bias).view(*lead, -1)
    y = F.linear(x2, module.weight, module.bias)
    if out is not None:
        _dense_(y, out)
    return y.view(*lead, y.shape[-1])


SMALL_M = 8   # up to this many rows the fused linear (a GEMV-shaped Triton kernel on GPU) runs


def _fusable(tables: ModuleTables) -> bool:
    """One lane, and no additive part on the input side (the fused linear has none)."""
    lanes = max(len(tables.inputs), len(tables.outputs))
    return lanes == 1 and (not tables.inputs or tables.inputs[0].bias is None)


def steered_linear_forward(module: nn.Linear, state: SteeringState, tables: ModuleTables):
    def forward(x: Tensor) -> Tensor:
        if state.dense:
            return _dense_linear(module, tables, x)
        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1])
        if x2.shape[0] <= SMALL_M and _fusable(tables):
            pro = tables.inputs[0] if tables.inputs else SideTables(None, None, None, None)
            epi = tables.outputs[0] if tables.outputs else SideTables(None, None, None, None)
            y = ops.steer_linear(x2.contiguous(), module.weight, module.bias,
                                 state.lane(0, x2.shape[0]), pro.mask, pro.delta,
                                 epi.mask, epi.delta, epi.bias, epi.coef)
            return y.view(*lead, y.shape[-1])
        if tables.inputs:
            # the projection's input is a temporary of the HF block: edit it in place unless
            # autograd may still need the unedited value (a contiguous x reshapes to a view)
            if torch.is_grad_enabled() or not x.is_contiguous():
                x2 = x2.clone(memory_format=torch.contiguous_format)
            _apply(state, x2, tables.inputs)
        y = F.linear(x2, module.weight, module.bias)
        _apply(state, y, tables.outputs)
        return y.view(*lead, y.shape[-1])

    return forward


def steered_embedding_forward(module: nn.Embedding, state: SteeringState, tables: ModuleTables):
    original = type(module).forward

    def forward(input_ids: Tensor) -> Tensor:
        y = original(module, input_ids)
        if state.dense:
            if tables.dense_out is not None:
                _dense_(y.view(-1, y.shape[-1]), tables.dense_out)
        else:
            _apply(state, y.view(-1, y.shape[-1]), tables.outputs)
        return y

    return forward
