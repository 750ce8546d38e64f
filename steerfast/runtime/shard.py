"""The rank's shard of a row-parallel module's input under HF tensor parallelism.

One place computes it; the patched runtime (runtime/steered.py) and the hook oracle
(hooks.py) both slice their input-side tables with it, so the two cannot disagree.
"""

from __future__ import annotations

from torch import nn

from ..errors import SteeringError


def shard_columns(module: nn.Module, width: int, full: int) -> slice | None:
    """Columns of the input this rank holds when the module is row-parallel (HF TP)."""
    if width == full:
        return None
    weight = getattr(module, "weight", None)
    mesh = getattr(weight, "device_mesh", None)
    if mesh is None:
        raise SteeringError(
            f"{type(module).__name__} input has width {width}, the plan's tables "
            f"{full}, and the module is not tensor-parallel: cannot steer it"
        )
    rank, size = mesh.get_local_rank(), mesh.size()
    chunk = -(-full // size)  # DTensor Shard(-1): torch.chunk sizes
    lo = rank * chunk
    if min(full, lo + chunk) - lo != width:
        raise SteeringError(
            f"tensor-parallel input shard of width {width} does not match rank "
            f"{rank}/{size} of {full} columns"
        )
    return slice(lo, lo + width)
