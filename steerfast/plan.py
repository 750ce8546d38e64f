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
from .conditions import Gate, as_gate, check_gated
from .errors import PlanError
from .positions import parse_policy

FORMAT = "steerfast.plan/1"
KINDS = ("add", "scale", "ablate")
UNIT_TOL = 1e-4  # an ablate direction row must have norm 1 within this (it is a projection)
RESIDUAL_SITES = ("embed.out", "attn.out", "mlp.out")
# |strength| * max|tensor| of one intervention: beyond it an add or a scale of an fp32/bf16 stream
# can overflow (norms square the stream; 1e6 squared stays far below fp32's 3.4e38 even summed
# over every layer's edit), so such plans are refused up front instead of giving inf/NaN logits.
MAX_EDIT = 1e6


def _check_json_native(value, where: str = "meta") -> None:
    """Only what JSON gives back unchanged: dict with str keys, list, str, int, finite float, bool, None."""
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PlanError(f"{where} is {value!r}: plan metadata must be finite (JSON has no NaN/inf)")
        return
    if isinstance(value, list):
        for i, v in enumerate(value):
            _check_json_native(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise PlanError(
                    f"{where} has key {k!r} ({type(k).__name__}): plan metadata keys must be strings"
                )
            _check_json_native(v, f"{where}[{k!r}]")
        return
    raise PlanError(
        f"{where} is a {type(value).__name__} ({value!r:.60}): plan metadata must be JSON-native "
        "(dict with str keys, list, str, int, float, bool, None) to load back unchanged"
    )


def _strength(value) -> float:
    if value is None or isinstance(value, (bool, str, bytes)):
        raise PlanError(f"strength must be a finite number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise PlanError(f"strength must be a finite number, got {value!r}") from exc
    if not math.isfinite(out):
        raise PlanError(f"strength must be finite, got {value!r}")
    return out


@dataclass(frozen=True)
class Intervention:
    """One intervention at one site of one layer.

    kind "add":   y[r] += strength * tensor[e]        (tensor (E, D): E=1, or n for prefix:n)
    kind "scale": y[r] *= 1 + strength * tensor[e]    (tensor (E, D) mask; SADI's δ is strength,
                                                        the official code's multiplier is 1 + δ)
    kind "ablate": y[r] -= strength * (y[r] . tensor[e]) * tensor[e]   (tensor rows unit norm;
                   strength α = 1 removes the direction, 0 < α < 1 shrinks it, 2 flips it)
    Interventions at one site apply in plan order (docs/architecture.md, Composition).
    The entry e is the token's prompt position for prefix:n, else 0.
    Immutable (use SteeringPlan.with_strength / with_positions, or build a new one);
    SteeringPlan.validate re-checks the tensor, which could still be edited in place.
    """

    layer: int
    site: str
    kind: str
    tensor: Tensor
    positions: str = "all"
    strength: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "strength", _strength(self.strength))
        self.check()
        t = self.tensor.detach()
        object.__setattr__(
            self, "tensor", (t.unsqueeze(0) if t.dim() == 1 else t).to(torch.float32).contiguous()
        )

    def check(self) -> None:
        """Raise PlanError if any field is invalid (the tensor's values included)."""
        if not isinstance(self.site, str) or self.site not in SITES:
            raise PlanError(f"unknown site {self.site!r}; expected one of {', '.join(SITES)}")
        if not isinstance(self.kind, str) or self.kind not in KINDS:
            raise PlanError(f"unknown kind {self.kind!r}; expected 'add', 'scale' or 'ablate'")
        if not isinstance(self.layer, int) or isinstance(self.layer, bool) or self.layer < 0:
            raise PlanError(f"layer must be a non-negative int, got {self.layer!r}")
        if self.site == "embed.out" and self.layer != 0:
            raise PlanError("site embed.out belongs to layer 0")
        if not isinstance(self.positions, str):
            raise PlanError(f"positions must be a string such as 'all' or 'prefix:4', got {self.positions!r}")
        name, n = parse_policy(self.positions)
        if not isinstance(self.tensor, Tensor):
            raise PlanError(f"intervention tensor must be a torch.Tensor, got {type(self.tensor).__name__}")
        t = self.tensor.detach()
        if t.dim() == 1:
            t = t.unsqueeze(0)
        if t.dim() != 2 or t.shape[0] == 0 or t.shape[1] == 0:
            raise PlanError(
                f"intervention tensor must be (D,) or (E, D), got shape {tuple(self.tensor.shape)}"
            )
        if not t.is_floating_point():
            raise PlanError(f"intervention tensor must be floating point, got {t.dtype}")
        if t.is_meta:
            raise PlanError(
                f"intervention tensor at layer {self.layer}, {self.site} is on the meta device (no values); "
                "materialise it (e.g. .to('cpu') after loading real weights)"
            )
        want = n if name == "prefix" else 1
        if t.shape[0] != want:
            raise PlanError(
                f"positions {self.positions!r} needs a tensor with {want} row(s), got {t.shape[0]} "
                f"(layer {self.layer}, {self.site})"
            )
        if not torch.isfinite(t).all():
            raise PlanError(f"intervention tensor at layer {self.layer}, {self.site} has NaN or inf")
        if self.kind == "ablate":
            if self.site in ("attn.heads", "mlp.neurons"):
                raise PlanError(
                    f"kind 'ablate' acts on the residual stream: site must be one of "
                    f"{', '.join(RESIDUAL_SITES)}, got {self.site!r}"
                )
            norms = t.double().norm(dim=1)
            if ((norms - 1).abs() > UNIT_TOL).any():
                raise PlanError(
                    f"kind 'ablate' needs unit direction rows (norm 1 within {UNIT_TOL:g}); "
                    f"layer {self.layer}, {self.site} has norms {[round(v, 6) for v in norms.tolist()]}: "
                    "normalise the direction first"
                )
        edit = abs(_strength(self.strength)) * float(t.abs().max())
        if edit > MAX_EDIT:
            raise PlanError(
                f"intervention at layer {self.layer}, {self.site}: |strength| x max|tensor| = {edit:.3g} "
                f"(strength {self.strength!r}) exceeds {MAX_EDIT:g}, beyond which logits can overflow"
            )

    @property
    def entries(self) -> int:
        return self.tensor.shape[0]

    @property
    def dim(self) -> int:
        return self.tensor.shape[1]

    def header(self) -> dict:
        return {
            "layer": self.layer,
            "site": self.site,
            "kind": self.kind,
            "positions": self.positions,
            "strength": self.strength,
        }


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

    def with_strength(self, strength: float) -> SteeringPlan:
        """A copy with every intervention's strength set to `strength` (tensors shared)."""
        return self._replace(strength=strength)

    def with_positions(self, positions: str) -> SteeringPlan:
        """A copy with every intervention steering at `positions` (tensor rows must fit)."""
        return self._replace(positions=positions)

    def _replace(self, **change) -> SteeringPlan:
        ivs = [
            Intervention(
                iv.layer,
                iv.site,
                iv.kind,
                iv.tensor,
                change.get("positions", iv.positions),
                change.get("strength", iv.strength),
            )
            for iv in self.interventions
        ]
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
        from safetensors.torch import save_file

        _check_json_native(self.meta)
        _check_json_native(self.model, "model hint")

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
        save_file(tensors, str(path), metadata={"steerfast": json.dumps(header)})

    @classmethod
    def load(cls, path: str | Path) -> SteeringPlan:
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise PlanError(f"no plan file at {path}")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
        except Exception as exc:  # safetensors raises its own error types for corrupt files
            raise PlanError(f"{path} is not a readable safetensors plan: {exc}") from exc
        try:
            header = json.loads(meta["steerfast"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanError(f"{path} has no steerfast plan header") from exc
        try:
            return cls._from_header(header, tensors)
        except PlanError as exc:
            raise PlanError(f"{path}: {exc}") from None
        except (KeyError, TypeError, AttributeError, ValueError, IndexError, RuntimeError) as exc:
            raise PlanError(f"{path}: malformed plan header ({type(exc).__name__}: {exc})") from exc

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


__all__ = ["Intervention", "SteeringPlan", "model_hint", "describe"]
