"""The two realisations of a patched module: the fast one here, the wrapped one in
runtime/wrapped.py (on the row ops and tables defined here).

* fast (`install_fast`): for a plain `nn.Linear` with a plain weight and nothing else
  installed, `forward` is replaced by prologue -> linear -> epilogue with the fused paths
  (the fused small-M linear, the projection's own bias carrying an add, in-place edits of a
  temporary input, whole-tensor decode realisations).
* wrapped (runtime/wrapped.py): for anything else (Conv1D, norms, embeddings, MoE blocks, PEFT
  or bitsandbytes layers, accelerate-offloaded or tensor-parallel modules) a forward pre-hook
  edits the input and a forward hook edits the output, around whatever forward the module has
  now, so its own wrappers (accelerate's weight loading, HF TP's all-reduce) still run and
  output-side edits land after them. Edits are out of place.

Both read the row maps computed once per call (SteeringState) and call the ops; no position
logic here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules import module as mm

from .. import ops
from ..errors import SteeringError
from .dense import Dense


@dataclass
class SideTables:
    """One lane's tables at one side of a module: (S*E, D) and (S*E,) fp32, None if unused."""

    mask: Tensor | None
    delta: Tensor | None
    bias: Tensor | None
    coef: Tensor | None
    dir: Tensor | None = None  # (S*E, D) unit rows, ablated after the affine part
    alpha: Tensor | None = None  # (S*E,)

    def any_table(self) -> Tensor:
        return next(t for t in (self.mask, self.bias, self.dir) if t is not None)

    def derived(self, device, columns: slice | None) -> SideTables:
        def one(t, is_row_table):
            if t is None:
                return None
            if columns is not None and is_row_table:
                t = t[:, columns]
            return t.to(device).contiguous()

        return SideTables(
            one(self.mask, True),
            one(self.delta, False),
            one(self.bias, True),
            one(self.coef, False),
            one(self.dir, True),
            one(self.alpha, False),
        )


_NO_TABLES = SideTables(None, None, None, None)


@dataclass
class ModuleTables:
    """Per lane (index = lane), None where no loaded slot steers that side in that lane.

    dense_in / dense_out: the decode-phase realisation when one plan steers every row
    (see SteeringState.dense); None = that side is untouched in decode.
    cache: tables derived for another device, a tensor-parallel shard or a folded bias;
    emptied whenever the bank's tables change.
    """

    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    dense_in: Dense | None = None
    dense_out: Dense | None = None
    realisation: str = "fast"
    cache: dict = field(default_factory=dict)
    live: bool = True


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
        self._moved: dict = {}

    def set_maps(self, maps: list[Tensor]) -> None:
        self.maps = maps
        self._moved = {}

    def lane(self, index: int, n_rows: int, device=None) -> Tensor:
        if index >= len(self.maps) or self.maps[index].shape[0] != n_rows:
            raise SteeringError(
                "a steered module was called outside a forward of the patched "
                f"model (no row map for lane {index} with {n_rows} rows)"
            )
        m = self.maps[index]
        if device is None or m.device == device:
            return m
        key = (index, device)
        if key not in self._moved:
            self._moved[key] = m.to(device)
        return self._moved[key]


def _apply(state: SteeringState, rows: Tensor, lanes: list) -> None:
    for index, t in enumerate(lanes):
        if t is not None and t.dir is not None:
            lane = state.lane(index, rows.shape[0], rows.device)
            ops.steer_ablate_(rows, lane, t.mask, t.delta, t.bias, t.coef, t.dir, t.alpha)
        elif t is not None:
            ops.steer_rows_(
                rows, state.lane(index, rows.shape[0], rows.device), t.mask, t.delta, t.bias, t.coef
            )


def _applied(state: SteeringState, rows: Tensor, lanes: list) -> Tensor:
    """Under torch.compile: the lanes as plain ops, out of place (fusable by Inductor)."""
    for index, t in enumerate(lanes):
        if t is not None:
            lane = state.lane(index, rows.shape[0], rows.device)
            if t.dir is not None:
                rows = ops.steered_ablate(rows, lane, t.mask, t.delta, t.bias, t.coef, t.dir, t.alpha)
            else:
                rows = ops.steered_rows(rows, lane, t.mask, t.delta, t.bias, t.coef)
    return rows


def _dense_(rows: Tensor, d: Dense) -> Tensor:
    """In place, on a tensor of ours (a fresh projection output or a copy)."""
    if not d.plain:  # apply / apply_ check the rows themselves
        if torch.compiler.is_compiling():  # the fused op would be a fusion barrier
            return rows.copy_(d.apply(rows))
        return d.apply_(rows)
    d.check_rows(rows.shape[0])
    if d.scale is not None and d.shift is not None:
        return rows.copy_(torch.addcmul(d.shift, rows, d.scale))
    if d.scale is not None:
        return rows.mul_(d.scale)
    return rows.add_(d.shift)


def _dense(rows: Tensor, d: Dense) -> Tensor:
    """Out of place (the caller's input stays as it was), in fp32, stored in rows' dtype."""
    if not d.plain:
        if torch.compiler.is_compiling():
            return d.apply(rows)
        return d.apply_(rows.clone(memory_format=torch.contiguous_format))
    d.check_rows(rows.shape[0])
    if d.scale is not None and d.shift is not None:
        out = torch.addcmul(d.shift, rows, d.scale)
    elif d.scale is not None:
        out = rows * d.scale
    else:
        out = rows + d.shift
    return out if out.dtype == rows.dtype else out.to(rows.dtype)


def _observed(module: nn.Module) -> bool:
    """Whether someone else's hook may hold the module's input (then never edit it in place)."""
    return bool(
        module._forward_pre_hooks
        or module._forward_hooks
        or mm._global_forward_pre_hooks
        or mm._global_forward_hooks
    )


def _editable_input(module: nn.Module, x: Tensor, x2: Tensor) -> Tensor:
    # the projection's input is a temporary of the HF block: edit it in place unless autograd
    # may still need the unedited value or a hook holds it (a contiguous x reshapes to a view)
    if torch.is_grad_enabled() or not x.is_contiguous() or _observed(module):
        return x2.clone(memory_format=torch.contiguous_format)
    if not torch.compiler.is_compiling() and x.is_inference() and not torch.is_inference_mode_enabled():
        return x2.clone(memory_format=torch.contiguous_format)
    return x2


def _on_device(tables: ModuleTables, dense: Dense, side: str, device) -> Dense:
    if dense is None or dense.any_table().device == device:
        return dense
    key = ("dense", side, device)
    if key not in tables.cache:
        tables.cache[key] = dense.to(device)
    return tables.cache[key]


def _folded_bias(module: nn.Linear, tables: ModuleTables, shift: Tensor) -> Tensor | None:
    """The projection's bias with the decode add folded in, or None where folding is not exact.

    Only fp32 weights fold: in half precision `addmm(b + v)` rounds differently from
    `addmm(b) + v`. The fold is re-derived when the bias, its contents or the dtype change.
    """
    w, b = module.weight, module.bias
    if w.dtype != torch.float32:
        return None
    key = ("fold", None if b is None else (id(b), b._version), w.device)
    hit = tables.cache.get("fold")
    if hit is not None and hit[0] == key:
        return hit[1]
    folded = shift.to(w.device) if b is None else b.detach() + shift.to(w.device)
    tables.cache["fold"] = (key, folded)
    return folded


def _dense_linear(module: nn.Linear, tables: ModuleTables, x: Tensor) -> Tensor:
    # decode-sized: the input side runs out of place (no checks on who else holds x), the
    # output side rides the projection's bias when it is a pure add on fp32 weights
    x2 = x.reshape(-1, x.shape[-1])
    if tables.dense_in is not None:
        x2 = _dense(x2, _on_device(tables, tables.dense_in, "in", x.device))
    out = tables.dense_out
    if out is None:
        return F.linear(x2, module.weight, module.bias).view(*x.shape[:-1], -1)
    out = _on_device(tables, out, "out", x.device)
    if out.scale is None and out.plain and not torch.is_grad_enabled():
        folded = _folded_bias(module, tables, out.shift)
        if folded is not None:
            out.check_rows(x2.shape[0])
            return F.linear(x2, module.weight, folded).view(*x.shape[:-1], -1)
    y = F.linear(x2, module.weight, module.bias)
    _dense_(y, out)
    return y.view(*x.shape[:-1], -1)


def _decode_lane(module: nn.Linear, tables: ModuleTables, x: Tensor):
    """The decode step of this projection resolved once, or None where it does not apply.

    Covers an output side that is an ablation chain, a pure add that folds into the bias, or
    nothing (rows on slots that leave the projection alone), with no input side: the weight,
    the bias (the add folded in) and the fused op calls with their argument tuples are bound
    here, so a step runs F.linear and the kernels behind one guard on what they were resolved
    for (rows, dtype, device, parameters and bias version, no grad, not compiling, the fused
    backend). The same calls as _dense_linear, without its per-call lookups: in decode the
    per-site Python is most of what an ablation costs. The guard failing returns None and the
    general path runs (which also raises the usual errors).
    """
    out = tables.dense_out
    if tables.dense_in is not None or x.dtype not in ops.FUSED_DTYPES:
        return None
    if torch.compiler.is_compiling() or torch.is_grad_enabled() or not ops.fused_selected():
        return None
    if out is not None and out.any_table().device != x.device:
        return None
    width, n = x.shape[-1], x.numel() // max(x.shape[-1], 1)
    if out is not None and out.rows and n != out.rows:
        return None
    params = module._parameters
    w, b = params["weight"], params["bias"]
    if out is None:  # every row of this step on a slot that leaves this projection alone
        bias, kernels = b, ()
    elif out.plain:
        bias = None if out.scale is not None else _folded_bias(module, tables, out.shift)
        if bias is None:
            return None
        kernels = ()
    else:
        bias, kernels = b, ops.bound_kernels(out.calls(n))
    dtype, device, version = x.dtype, x.device, None if b is None else b._version

    def lane(x: Tensor) -> Tensor | None:
        if (
            x.dtype is not dtype
            or torch.is_grad_enabled()
            or not ops.fused_selected()
            or torch.compiler.is_compiling()
            or params["weight"] is not w
            or params["bias"] is not b
            or (b is not None and b._version != version)
            or x.device != device
        ):
            return None
        x2 = x.reshape(-1, width)
        if x2.shape[0] != n:
            return None
        y = F.linear(x2, w, bias)
        for kernel, args in kernels:
            kernel(y, *args)
        return y.view(*x.shape[:-1], -1)

    return lane


def _decode_linear(module: nn.Linear, tables: ModuleTables, x: Tensor) -> Tensor:
    """A decode step whose lane (tables.cache["lane"], tried by the forward first) is missing
    or stepped aside: resolve it again for this step, else the general path."""
    lane = _decode_lane(module, tables, x)
    if lane is not None:
        tables.cache["lane"] = lane
        y = lane(x)
        if y is not None:
            return y
    return _dense_linear(module, tables, x)


SMALL_M = 8  # up to this many rows the fused linear (a GEMV-shaped Triton kernel on GPU) runs


def _fusable(tables: ModuleTables) -> bool:
    """One lane, no additive part on the input side and no ablation (the fused linear has
    neither; those rows run F.linear and the row ops)."""
    lanes = max(len(tables.inputs), len(tables.outputs))
    if any(t is not None and t.dir is not None for t in tables.inputs + tables.outputs):
        return False
    return lanes == 1 and (not tables.inputs or tables.inputs[0].bias is None)


def _local(tables: ModuleTables, side: str, device) -> list:
    """The side's lane tables on `device` (the bank's own tensors when already there)."""
    lanes = tables.inputs if side == "in" else tables.outputs
    first = next((t for t in lanes if t is not None), None)
    if first is None:
        return lanes
    if first.any_table().device == device:
        return lanes
    key = (side, device)
    if key not in tables.cache:
        tables.cache[key] = [None if t is None else t.derived(device, None) for t in lanes]
    return tables.cache[key]


def fast_linear_forward(module: nn.Linear, state: SteeringState, tables: ModuleTables):
    linear_forward = type(module).forward

    def forward(x: Tensor) -> Tensor:
        if not tables.live:  # reverted while someone else wrapped this forward
            return linear_forward(module, x)
        if state.dense:
            lane = tables.cache.get("lane")
            if lane is not None:
                y = lane(x)
                if y is not None:
                    return y
            return _decode_linear(module, tables, x)
        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1])
        inputs, outputs = _local(tables, "in", x.device), _local(tables, "out", x.device)
        if torch.compiler.is_compiling():  # the fused kernels would be fusion barriers
            y = F.linear(_applied(state, x2, inputs), module.weight, module.bias)
            y = _applied(state, y, outputs)
            return y.view(*lead, y.shape[-1])
        if x2.shape[0] <= SMALL_M and _fusable(tables):
            pro = inputs[0] if inputs else _NO_TABLES
            epi = outputs[0] if outputs else _NO_TABLES
            y = ops.steer_linear(
                x2.contiguous(),
                module.weight,
                module.bias,
                state.lane(0, x2.shape[0], x.device),
                pro.mask,
                pro.delta,
                epi.mask,
                epi.delta,
                epi.bias,
                epi.coef,
            )
            return y.view(*lead, y.shape[-1])
        if inputs:
            x2 = _editable_input(module, x, x2)
            _apply(state, x2, inputs)
        y = F.linear(x2, module.weight, module.bias)
        _apply(state, y, outputs)
        return y.view(*lead, y.shape[-1])

    return forward


def fast_path_ok(module: nn.Module) -> bool:
    """Exactly a plain nn.Linear with plain, materialised tensors and nothing installed on it."""
    if type(module) is not nn.Linear or "forward" in module.__dict__ or hasattr(module, "_hf_hook"):
        return False
    for p in (module.weight, module.bias):
        if p is not None and (type(p) not in (nn.Parameter, Tensor) or p.is_meta):
            return False
    return True
