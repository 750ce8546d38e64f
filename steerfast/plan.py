"""SteeringPlan: the artifact every recipe produces and the runtime applies.

A plan is a list of interventions plus metadata. Saved as one safetensors file: the tensors
as `intervention.<i>`, everything else as JSON in the file's metadata header.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from .adapters import SITES, get_adapter
from .errors import PlanError
from .positions import parse_policy

FORMAT = "steerfast.plan/1"
KINDS = ("add", "scale")


@dataclass
class Intervention:
    """One intervention at one site of one layer.

    kind "add":   y[r] += strength * tensor[e]        (tensor (E, D): E=1, or n for prefix:n)
    kind "scale": y[r] *= 1 + strength * tensor[e]    (tensor (E, D) mask; SADI's δ is strength,
                                                        the official code's multiplier is 1 + δ)
    The entry e is the token's prompt position for prefix:n, else 0.
    """
    layer: int
    site: str
    kind: str
    tensor: Tensor
    positions: str = "all"
    strength: float = 1.0

    def __post_init__(self):
        if self.site not in SITES:
            raise PlanError(f"unknown site {self.site!r}; expected one of {', '.join(SITES)}")
        if self.kind not in KINDS:
            raise PlanError(f"unknown kind {self.kind!r}; expected 'add' or 'scale'")
        if not isinstance(self.layer, int) or self.layer < 0:
            raise PlanError(f"layer must be a non-negative int, got {self.layer!r}")
        if self.site == "embed.out" and self.layer != 0:
            raise PlanError("site embed.out belongs to layer 0")
        name, n = parse_policy(self.positions)
        if not isinstance(self.tensor, Tensor):
            raise PlanError(f"intervention tensor must be a torch.Tensor, got {type(self.tensor).__name__}")
        t = self.tensor.detach()
        if t.dim() == 1:
            t = t.unsqueeze(0)
        if t.dim() != 2 or t.shape[0] == 0 or t.shape[1] == 0:
            raise PlanError(f"intervention tensor must be (D,) or (E, D), got shape {tuple(self.tensor.shape)}")
        if not t.is_floating_point():
            raise PlanError(f"intervention tensor must be floating point, got {t.dtype}")
        want = n if name == "prefix" else 1
        if t.shape[0] != want:
            raise PlanError(
                f"positions {self.positions!r} needs a tensor with {want} row(s), got {t.shape[0]} "
                f"(layer {self.layer}, {self.site})")
        if not torch.isfinite(t).all():
            raise PlanError(f"intervention tensor at layer {self.layer}, {self.site} has NaN or inf")
        if not math.isfinite(float(self.strength)):
            raise PlanError(f"strength must be finite, got {self.strength!r}")
        self.strength = float(self.strength)
        self.tensor = t.to(torch.float32).contiguous()

    @property
    def entries(self) -> int:
        return self.tensor.shape[0]

    @property
    def dim(self) -> int:
        return self.tensor.shape[1]

    def header(self) -> dict:
        return {"layer": self.layer, "site": self.site, "kind": self.kind,
                "positions": self.positions, "strength": self.strength}


def model_hint(model: nn.Module) -> dict:
    cfg = model.config
    return {"model_type": cfg.model_type, "hidden_size": cfg.hidden_size,
            "num_hidden_layers": cfg.num_hidden_layers}


@dataclass
class SteeringPlan:
    interventions: list[Intervention]
    method: str = "custom"
    model: dict = field(default_factory=dict)   # model hint: model_type, hidden_size, num_hidden_layers
    meta: dict = field(default_factory=dict)    # recipe details (JSON-serialisable)

    def __post_init__(self):
        if not self.interventions:
            raise PlanError("a plan needs at least one intervention")

    def with_strength(self, strength: float) -> "SteeringPlan":
        """A copy with every intervention's strength set to `strength` (tensors shared)."""
        return self._replace(strength=strength)

    def with_positions(self, positions: str) -> "SteeringPlan":
        """A copy with every intervention steering at `positions` (tensor rows must fit)."""
        return self._replace(positions=positions)

    def _replace(self, **change) -> "SteeringPlan":
        ivs = [Intervention(iv.layer, iv.site, iv.kind, iv.tensor,
                            change.get("positions", iv.positions), change.get("strength", iv.strength))
               for iv in self.interventions]
        return SteeringPlan(ivs, self.method, dict(self.model), dict(self.meta))

    def __add__(self, other: "SteeringPlan") -> "SteeringPlan":
        return SteeringPlan(self.interventions + other.interventions,
                            f"{self.method}+{other.method}", dict(self.model or other.model),
                            {"parts": [self.meta, other.meta]})

    # --- validation ------------------------------------------------------------------
    def validate(self, model: nn.Module) -> None:
        """Raise PlanError if the plan does not fit `model`; touches nothing."""
        adapter = get_adapter(model)
        cfg = model.config
        for key in ("hidden_size", "num_hidden_layers"):   # model_type may differ (same shapes)
            want = self.model.get(key)
            have = getattr(cfg, key, None)
            if want is not None and want != have:
                raise PlanError(f"plan was made for {key}={want}, the model has {key}={have}")
        n_layers = adapter.num_layers(model)
        for i, iv in enumerate(self.interventions):
            if iv.layer >= n_layers:
                raise PlanError(f"intervention {i}: layer {iv.layer} out of range; the model has "
                                f"{n_layers} layers (0..{n_layers - 1})")
            dim = adapter.site_dim(model, iv.layer, iv.site)
            if iv.dim != dim:
                raise PlanError(f"intervention {i}: {iv.site} of layer {iv.layer} has size {dim}, "
                                f"the plan's tensor has size {iv.dim}")

    # --- persistence -----------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        from safetensors.torch import save_file

        header = {"format": FORMAT, "method": self.method, "model": self.model, "meta": self.meta,
                  "interventions": [iv.header() for iv in self.interventions]}
        tensors = {f"intervention.{i}": iv.tensor.cpu().contiguous()
                   for i, iv in enumerate(self.interventions)}
        save_file(tensors, str(path), metadata={"steerfast": json.dumps(header)})

    @classmethod
    def load(cls, path: str | Path) -> "SteeringPlan":
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise PlanError(f"no plan file at {path}")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:  # safetensors raises its own error types for corrupt files
            raise PlanError(f"{path} is not a readable safetensors plan: {exc}") from exc
        try:
            header = json.loads(meta["steerfast"])
        except (KeyError, json.JSONDecodeError) as exc:
            raise PlanError(f"{path} has no steerfast plan header") from exc
        if header.get("format") != FORMAT:
            raise PlanError(f"{path}: unsupported plan format {header.get('format')!r}, expected {FORMAT}")
        ivs = []
        for i, h in enumerate(header["interventions"]):
            key = f"intervention.{i}"
            if key not in tensors:
                raise PlanError(f"{path}: tensor {key} is missing")
            ivs.append(Intervention(h["layer"], h["site"], h["kind"], tensors[key],
                                    h.get("positions", "all"), h.get("strength", 1.0)))
        return cls(ivs, header.get("method", "custom"), header.get("model", {}), header.get("meta", {}))


def describe(plan: SteeringPlan) -> str:
    rows = [f"{plan.method}: {len(plan.interventions)} intervention(s)"]
    for iv in plan.interventions:
        rows.append(f"  layer {iv.layer:>3} {iv.site:<12} {iv.kind:<5} E={iv.entries} D={iv.dim} "
                    f"positions={iv.positions} strength={iv.strength:g}")
    return "\n".join(rows)


__all__ = ["Intervention", "SteeringPlan", "model_hint", "describe"]
