"""Input checks shared by the recipes: each names the bad argument and what was expected."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..errors import PlanError


def check_pairs(pairs, what: str, item: str = "pair", sides=(str,)) -> list[tuple]:
    """A non-empty sequence of 2-tuples whose sides have one of the `sides` types."""
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
        raise PlanError(f"{what} needs a list of ({item}) 2-tuples, got {type(pairs).__name__}")
    if not pairs:
        raise PlanError(f"{what} needs at least one {item}")
    out = []
    for i, pair in enumerate(pairs):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise PlanError(f"{what}: {item} {i} must be a 2-tuple, got {pair!r:.80}")
        for side in pair:
            if not isinstance(side, sides):
                names = " or ".join(t.__name__ for t in sides)
                raise PlanError(f"{what}: {item} {i} has a {type(side).__name__} side, expected {names}")
        out.append(tuple(pair))
    return out


def check_batch_size(batch_size) -> int:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise PlanError(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size


def check_layers(layers, n_layers: int, what: str) -> list[int]:
    """`layers` (one layer, or a sequence of them) as a list, each an int (not a bool) in
    0..n_layers-1, at least one; order and repeats as given (the recipe decides about those)."""
    out = [layers] if isinstance(layers, int) else list(layers)
    if not out:
        raise PlanError(f"{what} needs at least one layer")
    for layer in out:
        if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < n_layers:
            raise PlanError(
                f"layer {layer!r} out of range; the model has {n_layers} layers (0..{n_layers - 1})"
            )
    return out


def check_number(value, name: str, minimum: float | None = None, strict: bool = False) -> float:
    """A finite real number (not a bool or string), optionally >= / > minimum."""
    if isinstance(value, (bool, str, bytes)) or value is None:
        raise PlanError(f"{name} must be a finite number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"{name} must be a finite number, got {value!r}") from exc
    if not math.isfinite(out):
        raise PlanError(f"{name} must be finite, got {value!r}")
    if minimum is not None and (out <= minimum if strict else out < minimum):
        raise PlanError(f"{name} must be {'>' if strict else '>='} {minimum:g}, got {value!r}")
    return out


def check_token_ids(rows: Sequence[Sequence[int]], vocab: int, what: str) -> None:
    for i, row in enumerate(rows):
        bad = [t for t in row if not 0 <= t < vocab]
        if bad:
            raise PlanError(
                f"{what} {i}: token ids {bad[:5]} are outside the model's vocabulary (0..{vocab - 1})"
            )
