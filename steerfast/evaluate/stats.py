"""Accuracy with a 95% interval (Wilson score), shared by every evaluation."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Accuracy:
    correct: int
    total: int

    @property
    def value(self) -> float:
        return self.correct / self.total if self.total else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.total)

    def __str__(self) -> str:
        lo, hi = self.interval
        return f"{100 * self.value:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def wilson_interval(correct: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    if total <= 0:
        raise ValueError("an interval needs at least one item")
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def beats(a: Accuracy, b: Accuracy) -> bool:
    """a beats b beyond b's 95% interval: a's accuracy is above the upper bound of b's."""
    return a.value > b.interval[1]
