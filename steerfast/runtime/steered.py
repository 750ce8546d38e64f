"""The steered forwards that replace `forward` on patched modules.

They only look up the row -> entry maps computed once per call (SteeringState) and call
the ops; no position logic and no per-layer Python beyond a dict lookup.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import ops
from ..errors import SteeringError
from .tables import Application, ModuleTables


class SteeringState:
    """Row -> entry maps ((B*T,) int32, -1 = untouched) of the current forward call, per policy."""

    def __init__(self):
        self.slots: dict[str, Tensor] = {}

    def rows(self, policy: str, n_rows: int) -> Tensor:
        slots = self.slots.get(policy)
        if slots is None or slots.shape[0] != n_rows:
            raise SteeringError(
                "a steered module was called outside a forward of the patched model "
                f"(expected row map for {policy!r} with {n_rows} rows)")
        return slots


def _apply(state: SteeringState, y2: Tensor, apps: list[Application]) -> None:
    for app in apps:
        ops.steer_rows_(y2, state.rows(app.policy, y2.shape[0]), *app.args())


def steered_linear_forward(module: nn.Linear, state: SteeringState, tables: ModuleTables):
    weight_holder = module

    def forward(x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1])
        if tables.inputs:
            # the projection's input is a temporary of the HF block; edit it in place unless
            # autograd may still need the unedited value
            if torch.is_grad_enabled() or not x2.is_contiguous() or x2.data_ptr() != x.data_ptr():
                x2 = x2.contiguous().clone()
            _apply(state, x2, tables.inputs)
        y = F.linear(x2, weight_holder.weight, weight_holder.bias)
        _apply(state, y, tables.outputs)
        return y.view(*lead, y.shape[-1])

    return forward


def steered_embedding_forward(module: nn.Embedding, state: SteeringState, tables: ModuleTables):
    original = type(module).forward

    def forward(input_ids: Tensor) -> Tensor:
        y = original(module, input_ids)
        y2 = y.view(-1, y.shape[-1])
        _apply(state, y2, tables.outputs)
        return y

    return forward
