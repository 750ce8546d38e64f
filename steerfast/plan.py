"""SteeringPlan: the artifact every recipe produces and the runtime applies.

A plan is a list of interventions plus metadata. Saved as one safetensors file: the tensors
as `intervention.<i>`, everything else as JSON in the file's metadata header.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from .adapters import get_adapter
from .artifact import check_json_native, load_artifact, save_artifact
from .conditions import Gate, as_gate, check_gated
from .errors import PlanError
from .intervention import KINDS, MAX_EDIT, RESIDUAL_SITES, UNIT_TOL, Intervention

FORMAT = "steerfast.plan/1"


def model_hint(model: nn.Module) -> dict:
    cfg = model.config
    return {
        "model_type": cfg.model_type,
        "hidden_size": cfg.hidden_size,
        "num_hidden_layers": cfg.num_hidden_layers,
    }


@dataclass
class SteeringPlan:
    interventions: list[Intervention]
    method: str = "custom"
    model: dict = field(default_factory=dict)  # model hint: model_type, hidden_size, num_hidden_layers
    meta: dict = field(default_factory=dict)  # recipe details (JSON-serialisable)
    condition: Gate | None = None  # a per-request gate on some interventions (conditions.py)

    def __post_init__(self):
        if isinstance(self.interventions, tuple):
            self.interventions = list(self.interventions)
        if not isinstance(self.interventions, list):
            raise PlanError(
                f"interventions must be a list of Intervention, got {type(self.interventions).__name__}"
            )
        if not self.interventions:
            raise PlanError("a plan needs at least one intervention")
        self._check_interventions()
        if not isinstance(self.method, str):
            raise PlanError(f"method must be a string, got {self.method!r}")
        self._check_hint()
        if not isinstance(self.meta, dict):
            raise PlanError(f"meta must be a dict, got {type(self.meta).__name__}")
        if self.condition is not None:
            self.condition = as_gate(self.condition)
            check_gated(self.condition, self.interventions)

    def _check_hint(self) -> None:
        if not isinstance(self.model, dict):
            raise PlanError(f"model hint must be a dict, got {type(self.model).__name__}")
        for key in ("hidden_size", "num_hidden_layers"):
            value = self.model.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise PlanError(f"model hint {key} must be an int, got {value!r} ({type(value).__name__})")
        if self.model.get("model_type") is not None and not isinstance(self.model["model_type"], str):
            raise PlanError(f"model hint model_type must be a string, got {self.model['model_type']!r}")

    def _check_interventions(self) -> None:
        for i, iv in enumerate(self.interventions):
            if not isinstance(iv, Intervention):
                raise PlanError(f"intervention {i} is a {type(iv).__name__}, not an Intervention")

    @classmethod
    def ablate_everywhere(
        cls,
        model: nn.Module,
        direction: Tensor,
        alpha: float = 1.0,
        layers=None,
        positions: str = "all",
    ) -> SteeringPlan:
        """Ablate `direction` (normalised here) at every residual site: embed.out, then
        attn.out and mlp.out of each layer (all layers, or `layers`; embed.out only when layer
        0 is included). With alpha = 1 at every layer the stream entering each layer has no
        component along the direction (the stream is a sum of those sites' outputs).

        direction (k, D): a subspace. Its rows are orthonormalised here (QR in fp64) and
        ablated one after another at each site; for orthonormal rows that is the projection
        onto the subspace's complement (alpha = 1), whatever the order."""
        if (
            not isinstance(direction, Tensor)
            or direction.dim() not in (1, 2)
            or not direction.is_floating_point()
            or direction.shape[-1] == 0
            or (direction.dim() == 2 and not 0 < direction.shape[0] <= direction.shape[1])
        ):
            raise PlanError(
                f"direction must be a float tensor (D,) or (k, D) with 1 <= k <= D, got {direction!r:.80}"
            )
        rows = direction.detach().double().reshape(-1, direction.shape[-1])
        if not torch.isfinite(rows).all():
            raise PlanError("direction must be finite")
        q, r = torch.linalg.qr(rows.T)  # (D, k): orthonormal columns spanning the rows
        scale = rows.norm(dim=1).max()
        if scale == 0 or (r.diagonal().abs() <= 1e-6 * scale).any():
            what = "non-zero" if rows.shape[0] == 1 else "linearly independent rows"
            raise PlanError(f"direction must be finite and {what}, got norms {rows.norm(dim=1).tolist()}")
        q = q * torch.sign(r.diagonal())  # row 0 keeps the sign of direction[0]
        units = [q[:, i].float().contiguous() for i in range(q.shape[1])]
        n = get_adapter(model).num_layers(model)
        chosen = list(range(n)) if layers is None else layers
        if (
            isinstance(chosen, int)
            or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n for i in chosen)
            or not chosen
        ):
            raise PlanError(f"layers must be a non-empty list of ints in 0..{n - 1}, got {layers!r}")
        sites = [(0, "embed.out")] if 0 in chosen else []
        sites += [(layer, site) for layer in sorted(set(chosen)) for site in ("attn.out", "mlp.out")]
        ivs = [
            Intervention(layer, site, "ablate", u, positions, alpha) for layer, site in sites for u in units
        ]
        meta = {"layers": sorted(set(chosen))} | ({"rank": len(units)} if len(units) > 1 else {})
        return cls(ivs, "ablation", model_hint(model), meta)

    def with_strength(self, strength: float, index: int | None = None) -> SteeringPlan:
        """A copy with every intervention's strength set to `strength`, or only intervention
        `index`'s (tensors shared)."""
        n = len(self.interventions)
        if index is not None and (
            isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n
        ):
            raise PlanError(f"index must be an int in 0..{n - 1} (the plan's interventions), got {index!r}")
        return self._replace(strength=strength, only=index)

    def with_positions(self, positions: str) -> SteeringPlan:
        """A copy with every intervention steering at `positions` (tensor rows must fit)."""
        return self._replace(positions=positions)

    def _replace(self, only: int | None = None, **change) -> SteeringPlan:
        """A copy with `change` applied to every intervention, or to intervention `only`."""

        def edit(i: int, iv: Intervention) -> Intervention:
            c = change if only is None or i == only else {}
            positions, strength = c.get("positions", iv.positions), c.get("strength", iv.strength)
            return Intervention(iv.layer, iv.site, iv.kind, iv.tensor, positions, strength)

        ivs = [edit(i, iv) for i, iv in enumerate(self.interventions)]
        return SteeringPlan(ivs, self.method, dict(self.model), dict(self.meta), self.condition)

    # --- conditions (steerfast/conditions.py) -------------------------------------------
    def when(self, condition, gated=None) -> SteeringPlan:
        """A copy whose interventions `gated` (indices; None = all) apply only to requests
        whose prompt meets `condition` (a Condition, or conditions combined with & / |)."""
        return SteeringPlan(
            list(self.interventions),
            self.method,
            dict(self.model),
            dict(self.meta),
            as_gate(condition, gated),
        )

    def without_condition(self) -> SteeringPlan:
        """The same interventions, every one applied (the gate forced on)."""
        return SteeringPlan(list(self.interventions), self.method, dict(self.model), dict(self.meta))

    def ungated(self) -> SteeringPlan | None:
        """Only the interventions no gate holds (the gate forced off); None if all are gated."""
        flags = self.condition.flags(len(self.interventions)) if self.condition else []
        ivs = [iv for iv, g in zip(self.interventions, flags or [False] * len(self.interventions)) if not g]
        return SteeringPlan(ivs, self.method, dict(self.model), dict(self.meta)) if ivs else None

    def __add__(self, other: SteeringPlan) -> SteeringPlan:
        if not isinstance(other, SteeringPlan):
            raise PlanError(
                f"can only combine a SteeringPlan with another SteeringPlan, got {type(other).__name__}"
            )
        if self.condition is not None and other.condition is not None:
            raise PlanError(
                "both plans carry a condition; a plan holds one gate (combine the conditions "
                "with & or | and gate the combined plan with .when())"
            )
        n = len(self.interventions)
        gate = self.condition
        if other.condition is not None:
            gate = other.condition.shifted(n, len(other.interventions))
        elif gate is not None:
            gate = gate.shifted(0, n)
        return SteeringPlan(
            self.interventions + other.interventions,
            f"{self.method}+{other.method}",
            dict(self.model or other.model),
            {"parts": [self.meta, other.meta]},
            gate,
        )

    # --- validation ------------------------------------------------------------------
    def validate(self, model: nn.Module) -> None:
        """Raise PlanError if the plan does not fit `model`; touches nothing."""
        if not self.interventions:
            raise PlanError("a plan needs at least one intervention")
        self._check_interventions()
        self._check_hint()
        for i, iv in enumerate(self.interventions):  # fields or tensors may have been edited
            try:
                iv.check()
            except PlanError as exc:
                raise PlanError(f"intervention {i}: {exc}") from None
        adapter = get_adapter(model)
        cfg = model.config
        for key in ("hidden_size", "num_hidden_layers"):  # model_type may differ (same shapes)
            want = self.model.get(key)
            have = getattr(cfg, key, None)
            if want is not None and want != have:
                raise PlanError(f"plan was made for {key}={want}, the model has {key}={have}")
        n_layers = adapter.num_layers(model)
        for i, iv in enumerate(self.interventions):
            if iv.layer >= n_layers:
                raise PlanError(
                    f"intervention {i}: layer {iv.layer} out of range; the model has "
                    f"{n_layers} layers (0..{n_layers - 1})"
                )
            dim = adapter.site_dim(model, iv.layer, iv.site)
            if iv.dim != dim:
                raise PlanError(
                    f"intervention {i}: {iv.site} of layer {iv.layer} has size {dim}, "
                    f"the plan's tensor has size {iv.dim}"
                )
        if self.condition is not None:
            check_gated(self.condition, self.interventions)
            width = getattr(cfg, "hidden_size", None)
            for k, c in enumerate(self.condition.conditions):
                c.check()
                if c.layer >= n_layers:
                    raise PlanError(
                        f"condition {k}: layer {c.layer} out of range; the model has {n_layers} layers"
                    )
                if width is not None and c.dim != width:
                    raise PlanError(
                        f"condition {k}: the residual stream has size {width}, the condition vector {c.dim}"
                    )

    # --- persistence -----------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Refuses (PlanError) metadata that JSON would not give back unchanged (tuples, int keys)."""
        check_json_native(self.meta)
        check_json_native(self.model, "model hint")

        header = {
            "format": FORMAT,
            "method": self.method,
            "model": self.model,
            "meta": self.meta,
            "interventions": [iv.header() for iv in self.interventions],
        }
        tensors, seen = {}, set()
        for i, iv in enumerate(self.interventions):
            t = iv.tensor.cpu().contiguous()
            if t.data_ptr() in seen:  # one direction shared by many sites: safetensors wants copies
                t = t.clone()
            seen.add(t.data_ptr())
            tensors[f"intervention.{i}"] = t
        if self.condition is not None:
            header["condition"] = self.condition.header()
            tensors.update(self.condition.tensors())
        save_artifact(path, header, tensors)

    @classmethod
    def load(cls, path: str | Path) -> SteeringPlan:
        """The plan of a plan file (one that carries monitors too: monitor.py); PlanError naming
        the path for a missing, unreadable or malformed file (artifact.py)."""
        return load_artifact(path, "plan", cls._from_header)

    @classmethod
    def _from_header(cls, header, tensors: dict) -> SteeringPlan:
        if not isinstance(header, dict):
            raise PlanError(f"the plan header must be a JSON object, got {type(header).__name__}")
        if header.get("format") != FORMAT:
            raise PlanError(f"unsupported plan format {header.get('format')!r}, expected {FORMAT}")
        entries = header.get("interventions")
        if not isinstance(entries, list):
            raise PlanError(f"header 'interventions' must be a list, got {type(entries).__name__}")
        gate_h = header.get("condition")
        n_cond = len(gate_h.get("conditions") or []) if isinstance(gate_h, dict) else 0
        extra = (
            set(tensors)
            - {f"intervention.{i}" for i in range(len(entries))}
            - {f"condition.{k}" for k in range(n_cond)}
            - {k for k in tensors if k.startswith("monitor.")}  # monitors it carries (monitor.py)
        )
        if extra:
            raise PlanError(f"tensors {sorted(extra)} belong to no intervention of the header")
        ivs = []
        for i, h in enumerate(entries):
            key = f"intervention.{i}"
            if not isinstance(h, dict):
                raise PlanError(f"intervention {i} must be a JSON object, got {type(h).__name__}")
            missing = [k for k in ("layer", "site", "kind") if k not in h]
            if missing:
                raise PlanError(f"intervention {i} has no {', '.join(missing)}")
            if key not in tensors:
                raise PlanError(f"tensor {key} is missing")
            try:
                ivs.append(
                    Intervention(
                        h["layer"],
                        h["site"],
                        h["kind"],
                        tensors[key],
                        h.get("positions", "all"),
                        h.get("strength", 1.0),
                    )
                )
            except PlanError as exc:
                raise PlanError(f"intervention {i}: {exc}") from None
        gate = None if gate_h is None else Gate.from_header(gate_h, tensors)
        return cls(ivs, header.get("method", "custom"), header.get("model", {}), header.get("meta", {}), gate)


def describe(plan: SteeringPlan) -> str:
    rows = [f"{plan.method}: {len(plan.interventions)} intervention(s)"]
    for iv in plan.interventions:
        rows.append(
            f"  layer {iv.layer:>3} {iv.site:<12} {iv.kind:<5} E={iv.entries} D={iv.dim} "
            f"positions={iv.positions} strength={iv.strength:g}"
        )
    if plan.condition is not None:
        rows.append(plan.condition.describe())
    return "\n".join(rows)


__all__ = [
    "Intervention",
    "SteeringPlan",
    "model_hint",
    "describe",
    "FORMAT",
    "KINDS",
    "MAX_EDIT",
    "RESIDUAL_SITES",
    "UNIT_TOL",
]
