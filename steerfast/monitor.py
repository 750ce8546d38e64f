"""Monitor: a concept read per generated token, in the same forward as the steering.

    reading(token t) = unit(vector) · h + bias

`h` is the residual stream entering decoder `layer` (site "layer.in", the read point of
conditions) at the position whose forward produced token t: the prompt's last token for the
first generated token, then each generated token's own position. Saved like plans: one
safetensors file, the vectors as `monitor.<k>`, the rest as JSON in the header. A plan file
may carry monitors too (`save_monitors(path, monitors, plan=plan)`); `load_monitors` reads
either kind of file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from .artifact import check_json_native, load_artifact, read_artifact, save_artifact
from .errors import PlanError, SteeringError

FORMAT = "steerfast.monitor/1"
NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass(frozen=True)
class Monitor:
    layer: int
    vector: Tensor
    name: str
    bias: float = 0.0
    meta: dict | None = None  # JSON-native notes (the recipe's accuracy, the data)

    def __post_init__(self):
        self.check()
        v = self.vector.detach().reshape(-1).to(torch.float32).cpu()
        norm = float(v.double().norm())
        if abs(norm - 1.0) > 1e-6:  # already unit (a loaded file): kept bit for bit
            v = v / norm
        object.__setattr__(self, "vector", v.contiguous())
        object.__setattr__(self, "bias", float(self.bias))
        object.__setattr__(self, "meta", dict(self.meta or {}))

    def check(self) -> None:
        if not isinstance(self.name, str) or not NAME.match(self.name):
            raise PlanError(
                f"monitor name must be 1-64 characters of letters, digits, '_', '.', ':' or '-', "
                f"got {self.name!r}"
            )
        if not isinstance(self.layer, int) or isinstance(self.layer, bool) or self.layer < 0:
            raise PlanError(f"monitor {self.name!r}: layer must be a non-negative int, got {self.layer!r}")
        if (
            isinstance(self.bias, bool)
            or not isinstance(self.bias, (int, float))
            or not math.isfinite(self.bias)
        ):
            raise PlanError(f"monitor {self.name!r}: bias must be a finite number, got {self.bias!r}")
        if not isinstance(self.vector, Tensor) or not self.vector.is_floating_point():
            raise PlanError(
                f"monitor {self.name!r}: vector must be a floating-point torch.Tensor of shape (D,)"
            )
        if self.vector.is_meta:
            raise PlanError(f"monitor {self.name!r}: vector holds no values (meta device)")
        v = self.vector.detach()
        if v.dim() != 1 or v.numel() == 0:
            raise PlanError(f"monitor {self.name!r}: vector must have shape (D,), got {tuple(v.shape)}")
        if not torch.isfinite(v).all() or float(v.norm()) == 0.0:
            raise PlanError(f"monitor {self.name!r}: vector must be finite and non-zero")

    @property
    def dim(self) -> int:
        return self.vector.shape[0]

    def validate(self, model: nn.Module) -> None:
        """Raise PlanError if the monitor cannot be read on `model`; touches nothing."""
        from .adapters import get_adapter, hidden_size

        n_layers = get_adapter(model).num_layers(model)
        if self.layer >= n_layers:
            raise PlanError(
                f"monitor {self.name!r}: layer {self.layer} out of range; the model has "
                f"{n_layers} layers (0..{n_layers - 1})"
            )
        width = hidden_size(model)
        if self.dim != width:
            raise PlanError(
                f"monitor {self.name!r}: the residual stream has size {width}, the monitor vector {self.dim}"
            )

    def header(self) -> dict:
        return {
            "name": self.name,
            "layer": self.layer,
            "site": "layer.in",
            "bias": self.bias,
            "meta": self.meta,
        }

    def describe(self) -> str:
        return f"  monitor {self.name}: unit(v)·h@layer.in L{self.layer} + {self.bias:g}"

    def save(self, path: str | Path) -> None:
        save_monitors(path, [self])

    @classmethod
    def load(cls, path: str | Path, name: str | None = None) -> Monitor:
        """The file's one monitor, or the one called `name`."""
        found = load_monitors(path)
        if name is not None:
            hit = [m for m in found if m.name == name]
            if not hit:
                raise PlanError(f"{path} has no monitor {name!r} (it has {[m.name for m in found]})")
            return hit[0]
        if len(found) != 1:
            raise PlanError(f"{path} holds {len(found)} monitors ({[m.name for m in found]}); pass name=")
        return found[0]


def check_names(monitors: Sequence[Monitor], where: str = "monitors") -> None:
    seen = set()
    for m in monitors:
        if not isinstance(m, Monitor):
            raise PlanError(
                f"{where} must hold steerfast.Monitor objects, got {type(m).__name__} ({m!r:.60})"
            )
        if m.name in seen:
            raise PlanError(f"{where}: two monitors are called {m.name!r}; names must be unique")
        seen.add(m.name)


def save_monitors(path: str | Path, monitors: Sequence[Monitor], plan=None) -> None:
    """One file holding `monitors`, and `plan` too when given (SteeringPlan.load reads it back)."""
    monitors = list(monitors)
    check_names(monitors)
    if not monitors:
        raise PlanError("save_monitors needs at least one monitor")
    for m in monitors:
        check_json_native(m.meta, f"monitor {m.name!r} meta")
    entries = [m.header() for m in monitors]
    tensors = {f"monitor.{k}": m.vector.contiguous() for k, m in enumerate(monitors)}
    if plan is None:
        save_artifact(path, {"format": FORMAT, "monitors": entries}, tensors)
        return
    plan.save(path)  # validated and written by the plan itself, then the monitors added
    header, plan_tensors = read_artifact(path, "plan")
    header["monitors"] = entries
    save_artifact(path, header, {**tensors, **plan_tensors})


def load_monitors(path: str | Path) -> list[Monitor]:
    """The monitors of a monitor file or of a plan file (a plan without monitors gives [])."""
    return load_artifact(path, "monitor", _from_header, keep=lambda name: name.startswith("monitor."))


def _from_header(header, tensors: dict) -> list[Monitor]:
    if not isinstance(header, dict):
        raise PlanError(f"the header must be a JSON object, got {type(header).__name__}")
    entries = header.get("monitors", [])
    if header.get("format") == FORMAT and not entries:
        raise PlanError("a monitor file with no monitors")
    if not isinstance(entries, list):
        raise PlanError(f"header 'monitors' must be a list, got {type(entries).__name__}")
    extra = set(tensors) - {f"monitor.{k}" for k in range(len(entries))}
    if extra:
        raise PlanError(f"tensors {sorted(extra)} belong to no monitor of the header")
    out = []
    for k, h in enumerate(entries):
        if not isinstance(h, dict) or f"monitor.{k}" not in tensors:
            raise PlanError(f"monitor {k} is malformed or its tensor monitor.{k} is missing")
        if h.get("site", "layer.in") != "layer.in":
            raise PlanError(f"monitor {k}: site {h.get('site')!r} is not supported (only 'layer.in')")
        out.append(Monitor(h["layer"], tensors[f"monitor.{k}"], h["name"], h.get("bias", 0.0), h.get("meta")))
    check_names(out, "the file's monitors")
    return out


def shipped_monitor(name: str = "sentiment") -> Monitor:
    """A monitor shipped for the default model (steerfast/data/monitors/)."""
    from importlib import resources

    path = resources.files("steerfast.data").joinpath("monitors", f"smollm2_{name}.safetensors")
    if not path.is_file():
        raise PlanError(f"no shipped monitor {name!r} ({path})")
    return Monitor.load(Path(str(path)), name)


class UnknownMonitor(SteeringError):
    """A request named a monitor the engine does not hold (400)."""


def requested(names, held, holder: str = "engine") -> list[str]:
    """A request's `monitors` field checked against the names `held`: a list of distinct
    known names (None: none); SteeringError (UnknownMonitor for a name not held) otherwise."""
    if names is None:
        return []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise SteeringError(f"monitors must be a list of monitor names, got {names!r:.80}")
    if len(set(names)) != len(names):
        raise SteeringError(f"monitors names a monitor twice: {names}")
    unknown = [n for n in names if n not in held]
    if unknown:
        raise UnknownMonitor(f"unknown monitor(s) {unknown}; this {holder} holds {sorted(held)}")
    return names


__all__ = [
    "Monitor",
    "save_monitors",
    "load_monitors",
    "shipped_monitor",
    "check_names",
    "UnknownMonitor",
    "requested",
]
