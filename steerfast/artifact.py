"""The steerfast file: one safetensors file, the tensors under their names and everything else
as JSON in the file's metadata under the key "steerfast". Plans (plan.py) and monitors
(monitor.py) are written and read here, with the same checks and the same errors; a plan file
may carry monitors too."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .errors import PlanError

HEADER_KEY = "steerfast"
# what building an artifact from a malformed header raises (a PlanError names the fault itself)
MALFORMED = (KeyError, TypeError, AttributeError, ValueError, IndexError, RuntimeError)

T = TypeVar("T")


def check_json_native(value, where: str = "meta") -> None:
    """Only what JSON gives back unchanged: dict with str keys, list, str, int, finite float, bool, None."""
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PlanError(f"{where} is {value!r}: plan metadata must be finite (JSON has no NaN/inf)")
        return
    if isinstance(value, list):
        for i, v in enumerate(value):
            check_json_native(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise PlanError(
                    f"{where} has key {k!r} ({type(k).__name__}): plan metadata keys must be strings"
                )
            check_json_native(v, f"{where}[{k!r}]")
        return
    raise PlanError(
        f"{where} is a {type(value).__name__} ({value!r:.60}): plan metadata must be JSON-native "
        "(dict with str keys, list, str, int, float, bool, None) to load back unchanged"
    )


def save_artifact(path: str | Path, header: dict, tensors: dict) -> None:
    """Write `tensors` and `header` (JSON) as one steerfast file."""
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata={HEADER_KEY: json.dumps(header)})


def read_artifact(path: str | Path, what: str, keep: Callable[[str], bool] | None = None) -> tuple:
    """(header, tensors) of the steerfast file at `path`: the header as JSON gave it (not checked
    further) and the tensors whose names `keep` accepts (all without it). A PlanError naming the
    path and `what` ("plan", "monitor") when there is no file, no safetensors file or no header."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise PlanError(f"no {what} file at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            names = [k for k in f.keys() if keep is None or keep(k)]  # noqa: SIM118 (safe_open is not a dict)
            tensors = {k: f.get_tensor(k) for k in names}
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise PlanError(f"{path} is not a readable safetensors {what}: {exc}") from exc
    try:
        header = json.loads(meta[HEADER_KEY])
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanError(f"{path} has no steerfast {what} header") from exc
    return header, tensors


def load_artifact(
    path: str | Path, what: str, build: Callable[..., T], keep: Callable[[str], bool] | None = None
) -> T:
    """build(header, tensors) of the file at `path` (read_artifact's pair). A fault in the header
    is a PlanError naming the path: build's own PlanError, or a malformed header (an exception of
    MALFORMED, named with its type)."""
    header, tensors = read_artifact(path, what, keep)
    try:
        return build(header, tensors)
    except PlanError as exc:
        raise PlanError(f"{path}: {exc}") from None
    except MALFORMED as exc:
        raise PlanError(f"{path}: malformed {what} header ({type(exc).__name__}: {exc})") from exc


__all__ = ["HEADER_KEY", "MALFORMED", "check_json_native", "save_artifact", "read_artifact", "load_artifact"]
