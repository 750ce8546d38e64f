"""Any vector file -> plan, and plan -> file, chosen by content and suffix."""

from __future__ import annotations

from pathlib import Path

from ..errors import PlanError
from ..plan import SteeringPlan
from . import controlvector, peers

TORCH_SUFFIXES = (".pt", ".pth", ".bin")


def kind_of(path: Path) -> str:
    """'gguf', 'safetensors' or 'torch' (by magic bytes first, suffix second)."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head[:4] == controlvector.GGUF_MAGIC:
        return "gguf"
    if head[:2] == b"PK" or path.suffix in TORCH_SUFFIXES:
        return "torch"
    if path.suffix == ".gguf":
        return "gguf"  # read() names what is wrong with it
    return "safetensors"


def load_plan(path: str | Path, scale: float | None = None) -> SteeringPlan:
    """A plan from a steerfast .safetensors, a control-vector .gguf or a steering-vectors .pt.

    `scale` (GGUF, .pt) is the strength the vectors apply at; safetensors plans keep theirs.
    """
    path = Path(path)
    if not path.is_file():
        raise PlanError(f"no such file: {path}")
    kind = kind_of(path)
    if kind == "gguf":
        return controlvector.import_gguf(path, scale)
    if kind == "torch":
        return peers.load_steering_vector_file(path, 1.0 if scale is None else scale)
    return SteeringPlan.load(path)


def save_plan(
    plan: SteeringPlan, path: str | Path, convention: str = "llamacpp", allow_positions: bool = False
) -> Path:
    """.gguf -> control vector, anything else -> steerfast safetensors."""
    path = Path(path)
    if path.suffix == ".gguf":
        return controlvector.export_gguf(plan, path, convention, allow_positions)
    if path.suffix != ".safetensors":
        raise PlanError(f"output {path} must end in .safetensors or .gguf")
    plan.save(path)
    return path


__all__ = ["load_plan", "save_plan", "kind_of"]
