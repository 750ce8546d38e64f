"""Reading monitors (steerfast/monitor.py) inside the forward that steers.

One forward pre-hook per decoder layer that some monitor reads (the read point of conditions,
runtime/gates.py): at each forward it takes the stream entering the layer at each row's
producing position — the last position of an HF generate call's (B, T) input, or the given
token indices of a packed continuous-batching step — and appends `h @ unit(v)ᵀ + bias` for
every monitor read there, one (rows, K) fp32 tensor, to a list kept on the device. Nothing
leaves the device until the caller asks (`readings()`, once per call; `step()` per streamed
token). No second pass, no .item() per token.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..adapters import execution_device, get_adapter
from ..monitor import Monitor, check_names


class _Point:
    """The monitors read at one decoder layer's input: their columns, vectors and biases."""

    def __init__(self, layer: int, cols: list[int], monitors: list[Monitor], device):
        self.layer = layer
        self.cols = cols
        self.vecs_t = torch.stack([m.vector for m in monitors]).t().contiguous().to(device)  # (D, K)
        self.bias = torch.tensor([m.bias for m in monitors], dtype=torch.float32, device=device)
        self.steps: list[Tensor] = []

    def read(self, h: Tensor) -> Tensor:
        if self.vecs_t.device != h.device:  # a model split over devices: move once
            self.vecs_t, self.bias = self.vecs_t.to(h.device), self.bias.to(h.device)
        return torch.addmm(self.bias, h.to(torch.float32), self.vecs_t)


class MonitorReader:
    """Installs the read points of `monitors` on `model` (a context manager; close() removes
    exactly what it installed). It reads every row's last position (HF generate), or, when
    `packed_index` is set (a (R,) LongTensor of flat token indices), those tokens of a packed
    (1, N) step. `enabled = False` makes the hooks return at once."""

    def __init__(self, model: nn.Module, monitors: Sequence[Monitor]):
        monitors = list(monitors)
        check_names(monitors)
        for m in monitors:
            m.validate(model)
        self.monitors = monitors
        self.names = [m.name for m in monitors]
        self.packed_index: Tensor | None = None
        self.enabled = True
        device = execution_device(model)
        by_layer: dict[int, list[int]] = {}
        for k, m in enumerate(monitors):
            by_layer.setdefault(m.layer, []).append(k)
        self.points = [
            _Point(layer, ks, [monitors[k] for k in ks], device) for layer, ks in sorted(by_layer.items())
        ]
        order = [k for p in self.points for k in p.cols]
        self._unsort = torch.tensor(order).argsort()  # point-major columns -> monitor order
        layers = get_adapter(model).layer_modules(model)
        self._hooks = [
            layers[p.layer].register_forward_pre_hook(self._reader(p), with_kwargs=True) for p in self.points
        ]

    def _reader(self, point: _Point):
        def pre(module, args, kwargs):
            if not self.enabled:
                return None
            h = args[0] if args else kwargs["hidden_states"]
            if self.packed_index is not None:
                x = h.reshape(-1, h.shape[-1]).index_select(0, self.packed_index)
            else:
                x = h[:, -1]
            point.steps.append(point.read(x))
            return None

        return pre

    @property
    def n_steps(self) -> int:
        return len(self.points[0].steps) if self.points else 0

    def clear(self) -> None:
        for p in self.points:
            p.steps.clear()

    def stacked(self) -> Tensor:
        """(steps, rows, K) fp32 on the device, K in the order of `monitors`."""
        per_point = [torch.stack(p.steps) for p in self.points]
        return torch.cat(per_point, dim=-1)[..., self._unsort.to(per_point[0].device)]

    def readings(self) -> Tensor:
        """(steps, rows, K) on the host: one device-to-host copy for the whole call."""
        if not self.n_steps:
            return torch.zeros(0, 0, len(self.monitors))
        return self.stacked().cpu()

    def step(self, t: int) -> Tensor:
        """(rows, K) of forward t on the host (a streamer's per-token read)."""
        parts = torch.cat([p.steps[t] for p in self.points], dim=-1)
        return parts[..., self._unsort.to(parts.device)].cpu()

    def close(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []

    def __enter__(self) -> MonitorReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["MonitorReader"]
