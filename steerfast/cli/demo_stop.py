"""When the demo's latency lines stop: once every line's spread is stable, not at a fixed count.

After each interleaved round, every steered case's per-round ratios to the group's base case
are bootstrapped (seeded, so a run is reproducible from its samples); the group stops when each
line's 95% interval of the median ratio is within ±`rel` of that median, after at least
`min_rounds` rounds, or at `max_rounds` whatever the spread.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass, field


def ratios(samples: dict[str, list[float]], base: str) -> dict[str, list[float]]:
    """Per-round ratios of every case to `base` (rounds where base took no time are skipped)."""
    b = samples[base]
    return {k: [x / y for x, y in zip(v, b) if y > 0] for k, v in samples.items()}


def median_interval(values: list[float], n_boot: int = 400, seed: int = 0) -> tuple[float, float]:
    """The 95% percentile-bootstrap interval of the median of `values`."""
    rng = random.Random(seed)
    n = len(values)
    meds = sorted(statistics.median(rng.choices(values, k=n)) for _ in range(n_boot))
    return meds[int(0.025 * (n_boot - 1))], meds[int(round(0.975 * (n_boot - 1)))]


def half_width(values: list[float]) -> float:
    """Half the 95% bootstrap interval of the median, relative to the median (inf if empty)."""
    if not values:
        return float("inf")
    lo, hi = median_interval(values)
    med = statistics.median(values)
    return (hi - lo) / 2 / med if med > 0 else float("inf")


@dataclass
class StopRule:
    base: str
    rel: float = 0.05
    min_rounds: int = 4
    max_rounds: int = 8
    rounds: int = field(default=0, init=False)  # rounds run when the group stopped
    stable: bool = field(default=False, init=False)  # stopped by the spread rule, not the cap

    def __post_init__(self):
        if not self.rel > 0 or not 2 <= self.min_rounds <= self.max_rounds:
            raise ValueError(
                f"stop rule needs rel > 0 and 2 <= min_rounds <= max_rounds, got {self.rel}, "
                f"{self.min_rounds}, {self.max_rounds}"
            )

    def __call__(self, samples: dict[str, list[float]]) -> bool:
        self.rounds = len(samples[self.base])
        if self.rounds < self.min_rounds:
            return False
        r = ratios(samples, self.base)
        self.stable = all(half_width(v) <= self.rel for k, v in r.items() if k != self.base)
        return self.stable or self.rounds >= self.max_rounds

    def describe(self) -> str:
        return (
            f"each group of lines stops once every line's 95% bootstrap interval of its median ratio is "
            f"within ±{100 * self.rel:g}% of that median (at least {self.min_rounds} rounds), "
            f"or at {self.max_rounds} rounds"
        )

    def outcome(self) -> str:
        how = "spread stable" if self.stable else "cap reached, spread not yet stable"
        return f"{self.rounds} rounds ({how})"


__all__ = ["StopRule", "ratios", "median_interval", "half_width"]
