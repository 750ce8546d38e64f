"""One entry of a request's `steering` list: a named plan, its strength and positions."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import SteeringError
from ..positions import parse_policy


@dataclass(frozen=True)
class SteerEntry:
    plan: str
    strength: float | None = None
    positions: str | None = None

    def check(self) -> None:
        if self.strength is not None and (
            isinstance(self.strength, bool)
            or not isinstance(self.strength, (int, float))
            or not math.isfinite(self.strength)
        ):
            raise SteeringError(f"steering strength must be a finite number, got {self.strength!r}")
        if self.positions is not None:
            parse_policy(self.positions)


__all__ = ["SteerEntry"]
