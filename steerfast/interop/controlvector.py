"""GGUF control vectors (llama.cpp, repeng) <-> SteeringPlan, with the `gguf` library.

Format: `general.architecture = "controlvector"`, `controlvector.model_hint` (llama.cpp: the
GGUF architecture name; repeng: the HF model_type), `controlvector.layer_count` (int32 from
llama.cpp, uint32 from repeng), and one F32 1-D tensor `direction.N` per steered block. See
layers.py for where direction.N lands. Export adds `steerfast.*` keys, which llama.cpp and
repeng ignore, so that import gives back the same plan.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import PlanError
from ..plan import FORMAT, SteeringPlan
from .layers import LAYER_BASE, SITE
from .vectors import directions_from_plan, plan_from_directions

ARCH = "controlvector"
CONVENTIONS = ("llamacpp", "repeng")
# HF model_type -> llama.cpp architecture name (llama.cpp converts mistral to "llama")
GGUF_ARCH = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3"}
GGUF_MAGIC = b"GGUF"


@dataclass
class ControlVectorFile:
    """What a control-vector GGUF holds, before it becomes a plan."""

    directions: dict[int, np.ndarray]
    model_hint: str | None
    layer_count: int | None
    convention: str  # "llamacpp" (int32 layer_count), "repeng" (uint32) or "unknown"
    steerfast: dict = field(default_factory=dict)  # the steerfast.* keys, when steerfast wrote it


def _field_value(reader, key):
    f = reader.get_field(key)
    if f is None or not f.types:
        return None, None
    return f.contents(), f.types[0]


def read(path: str | Path) -> ControlVectorFile:
    """Parse a control-vector GGUF; PlanError for a missing, non-GGUF or foreign file."""
    import gguf

    path = Path(path)
    if not path.is_file():
        raise PlanError(f"no control-vector file at {path}")
    with open(path, "rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            raise PlanError(f"{path} is not a GGUF file")
    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as exc:  # gguf raises ValueError / struct errors for corrupt files
        raise PlanError(f"{path} is not a readable GGUF file: {exc}") from exc
    arch, _ = _field_value(reader, "general.architecture")
    if arch != ARCH:
        what = f"a GGUF {arch!r} model" if arch else "a GGUF file without general.architecture"
        raise PlanError(f"{path} is {what}, not a control vector (general.architecture = {ARCH!r})")
    hint, _ = _field_value(reader, f"{ARCH}.model_hint")
    count, kind = _field_value(reader, f"{ARCH}.layer_count")
    convention = {gguf.GGUFValueType.INT32: "llamacpp", gguf.GGUFValueType.UINT32: "repeng"}.get(
        kind, "unknown"
    )
    directions = {}
    for t in reader.tensors:
        prefix, _, idx = t.name.partition(".")
        if prefix != "direction" or not idx.isdigit():
            raise PlanError(f"{path}: tensor {t.name!r} is not a direction.N tensor")
        if t.tensor_type != gguf.GGMLQuantizationType.F32 or len(t.shape) != 1:
            raise PlanError(
                f"{path}: {t.name} must be a 1-D F32 tensor, got "
                f"{t.tensor_type.name} of shape {list(t.shape)}"
            )
        directions[int(idx)] = np.array(t.data, dtype=np.float32)  # copy out of the memmap
    if not directions:
        raise PlanError(f"{path} holds no direction tensors")
    sf = {}
    for key in reader.fields:
        if key.startswith("steerfast."):
            sf[key[len("steerfast.") :]] = reader.get_field(key).contents()
    return ControlVectorFile(directions, hint, int(count) if count is not None else None, convention, sf)


def to_plan(cv: ControlVectorFile, scale: float | None = None, source: str = "") -> SteeringPlan:
    """direction.N -> add at mlp.out of layer N, every token, strength = scale.

    scale defaults to the strength steerfast recorded on export, else 1 (llama.cpp's default).
    A file written by steerfast gives back its method, positions, model hint and metadata.
    """
    sf = cv.steerfast
    if sf and sf.get("format") != FORMAT:
        raise PlanError(f"{source}: unsupported steerfast format {sf.get('format')!r}, expected {FORMAT}")
    if sf and (sf.get("site") != SITE or int(sf.get("layer_base", LAYER_BASE)) != LAYER_BASE):
        raise PlanError(
            f"{source}: written with site {sf.get('site')} / layer base "
            f"{sf.get('layer_base')}, this steerfast reads {SITE} / {LAYER_BASE}"
        )
    strength = float(scale if scale is not None else sf.get("strength", 1.0))
    dim = len(next(iter(cv.directions.values())))
    model = (
        json.loads(sf["model"])
        if "model" in sf
        else {**({"model_type": cv.model_hint} if cv.model_hint else {}), "hidden_size": dim}
    )
    meta = (
        json.loads(sf["meta"])
        if "meta" in sf
        else {
            "gguf": {
                "model_hint": cv.model_hint,
                "layer_count": cv.layer_count,
                "convention": cv.convention,
                "source": str(source),
            }
        }
    )
    return plan_from_directions(
        cv.directions, strength, sf.get("positions", "all"), sf.get("method", "controlvector"), model, meta
    )


def import_gguf(path: str | Path, scale: float | None = None, model=None) -> SteeringPlan:
    """A plan from a control-vector GGUF; with `model`, checked against it (nothing patched)."""
    plan = to_plan(read(path), scale, str(path))
    if model is not None:
        check_fits(plan, model, str(path))
    return plan


def import_ggufs(files, model=None) -> SteeringPlan:
    """Several control vectors at once, as llama.cpp's repeated --control-vector-scaled FILE SCALE:
    `files` is [(path, scale or None), ...]; vectors on the same block add up."""
    files = list(files)
    if not files:
        raise PlanError("no control-vector files given")
    plans = [to_plan(read(path), scale, str(path)) for path, scale in files]
    plan = plans[0]
    for other in plans[1:]:
        plan = plan + other
    if model is not None:
        check_fits(plan, model, ", ".join(str(p) for p, _ in files))
    return plan


def check_fits(plan: SteeringPlan, model, source: str = "plan") -> None:
    """PlanError naming the mismatch (hidden size, layer count) before anything is patched."""
    try:
        plan.validate(model)
    except PlanError as exc:
        raise PlanError(f"{source} does not fit the model: {exc}") from None


def export_gguf(
    plan: SteeringPlan, path: str | Path, convention: str = "llamacpp", allow_positions: bool = False
) -> Path:
    """Write `plan` as a control vector llama.cpp (or repeng) can load.

    Only `add`s at mlp.out with one vector per layer are expressible. llama.cpp steers every
    token: a plan steering other positions is refused unless allow_positions (its positions are
    then recorded for steerfast's own import, and llama.cpp steers every token). Apply the file
    at scale = the recorded steerfast.strength (llama.cpp: --control-vector-scaled FILE S).
    """
    import gguf

    if convention not in CONVENTIONS:
        raise PlanError(f"unknown convention {convention!r}; expected one of {', '.join(CONVENTIONS)}")
    if getattr(plan, "condition", None) is not None:
        raise PlanError(
            "the plan is conditional (a per-request gate read from the prompt): a llama.cpp "
            "control vector is applied to every request unconditionally and has no place for a "
            "condition. Save it as .safetensors, or export plan.without_condition() to steer "
            "every request"
        )
    positions = {iv.positions for iv in plan.interventions}
    if len(positions) > 1:
        raise PlanError(f"a control vector has one position policy; the plan mixes {sorted(positions)}")
    (pos,) = positions
    if pos != "all" and not allow_positions:
        raise PlanError(
            f"the plan steers at positions {pos!r}; llama.cpp steers every token. Export "
            "with allow_positions=True (CLI: --allow-positions) to accept that, or use "
            "plan.with_positions('all')"
        )
    directions, strength = directions_from_plan(plan)
    if convention == "llamacpp" and 0 in directions:
        raise PlanError(
            "the plan steers mlp.out of layer 0 (direction.0), which llama.cpp cannot "
            "apply (its loader rejects block 0); export with convention='repeng' to keep it"
        )
    model_type = plan.model.get("model_type") or "unknown"
    path = Path(path)
    writer = gguf.GGUFWriter(str(path), ARCH)
    if convention == "llamacpp":
        writer.add_string(f"{ARCH}.model_hint", GGUF_ARCH.get(model_type, model_type))
        writer.add_int32(f"{ARCH}.layer_count", max(directions))  # llama.cpp's buffer spans 1..max
    else:
        writer.add_string(f"{ARCH}.model_hint", model_type)
        writer.add_uint32(f"{ARCH}.layer_count", len(directions))
    writer.add_string("steerfast.format", FORMAT)
    writer.add_string("steerfast.method", plan.method)
    writer.add_string("steerfast.site", SITE)
    writer.add_int32("steerfast.layer_base", LAYER_BASE)
    writer.add_string("steerfast.positions", pos)
    writer.add_float64("steerfast.strength", strength)
    writer.add_string("steerfast.model", json.dumps(plan.model))
    writer.add_string("steerfast.meta", json.dumps(plan.meta))
    for n in sorted(directions):
        writer.add_tensor(f"direction.{n}", directions[n].numpy().astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


__all__ = [
    "ControlVectorFile",
    "read",
    "to_plan",
    "import_gguf",
    "import_ggufs",
    "export_gguf",
    "check_fits",
    "CONVENTIONS",
    "GGUF_ARCH",
]
