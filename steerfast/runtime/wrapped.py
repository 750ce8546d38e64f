"""The wrapped realisation (docs/architecture.md, Realisations): for every module the fast path
does not take (Conv1D, PEFT, quantised layers, offloaded modules, TP's installed forward, norms,
MoE blocks), a forward pre-hook edits a copy of the input and a forward hook a copy of the
output around the module's current forward. Tables are sliced to a TP rank's shard and moved
to each module's execution device. The row ops and tables are runtime/steered.py's."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import SteeringError
from .dense import Dense
from .shard import shard_columns
from .steered import ModuleTables, SteeringState, _applied, _apply, _dense_, _local, _on_device


def _wrapped_tables(tables: ModuleTables, side: str, rows: Tensor, module: nn.Module) -> list:
    lanes = tables.inputs if side == "in" else tables.outputs
    first = next((t for t in lanes if t is not None), None)
    full = first.any_table().shape[1]
    columns = shard_columns(module, rows.shape[-1], full) if side == "in" else None
    if columns is None:
        return _local(tables, side, rows.device)
    key = (side, rows.device, columns.start, columns.stop)
    if key not in tables.cache:
        tables.cache[key] = [None if t is None else t.derived(rows.device, columns) for t in lanes]
    return tables.cache[key]


def _dense_shard(tables: ModuleTables, dense: Dense, side: str, rows: Tensor, module) -> Dense:
    full = dense.any_table().shape[-1]
    columns = shard_columns(module, rows.shape[-1], full) if side == "in" else None
    if columns is None:
        return _on_device(tables, dense, side, rows.device)
    key = ("dense", side, rows.device, columns.start, columns.stop)
    if key not in tables.cache:
        if not dense.plain:
            raise SteeringError(
                "an ablation cannot run on a tensor-parallel input shard (it needs the whole row)"
            )
        cut = lambda t: None if t is None else t[..., columns].to(rows.device).contiguous()  # noqa: E731
        tables.cache[key] = Dense(cut(dense.scale), cut(dense.shift), dense.rows)
    return tables.cache[key]


def _is_dtensor(t) -> bool:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # a torch built without distributed
        return False
    return isinstance(t, DTensor)


def _steer_copy(state: SteeringState, tables: ModuleTables, side: str, t: Tensor, module) -> Tensor:
    if _is_dtensor(t):
        raise SteeringError(
            f"{type(module).__name__} {'input' if side == 'in' else 'output'} is a "
            f"{type(t).__name__}, not a plain tensor: steerfast cannot steer it"
        )
    if not state.dense and torch.compiler.is_compiling():
        rows = _applied(state, t.reshape(-1, t.shape[-1]), _wrapped_tables(tables, side, t, module))
        return rows.view(t.shape)
    rows = t.reshape(-1, t.shape[-1]).clone(memory_format=torch.contiguous_format)
    if state.dense:
        dense = tables.dense_in if side == "in" else tables.dense_out
        if dense is not None:
            _dense_(rows, _dense_shard(tables, dense, side, rows, module))
    else:
        _apply(state, rows, _wrapped_tables(tables, side, rows, module))
    return rows.view(t.shape)


def wrapped_pre_hook(state: SteeringState, tables: ModuleTables):
    def pre(module, args, kwargs):
        if not tables.live or not tables.inputs:
            return None
        if args:
            return (_steer_copy(state, tables, "in", args[0], module),) + tuple(args[1:]), kwargs
        name = next(iter(kwargs))
        return args, {**kwargs, name: _steer_copy(state, tables, "in", kwargs[name], module)}

    return pre


def wrapped_post_hook(state: SteeringState, tables: ModuleTables):
    def post(module, args, out):
        if not tables.live or not tables.outputs:
            return None
        if isinstance(out, tuple):  # e.g. an MoE block returning (hidden, router logits)
            return (_steer_copy(state, tables, "out", out[0], module),) + out[1:]
        return _steer_copy(state, tables, "out", out, module)

    return post


__all__ = ["wrapped_pre_hook", "wrapped_post_hook"]
