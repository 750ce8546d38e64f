"""LAAI's hyper-parameters, written once (as PEFT's LoraConfig holds LoRA's).

`LaaiConfig()` is the default setting (recipes/laai.py's docstring says why each value);
`laai(..., config=LaaiConfig(l2=1e-3))` or keyword overrides `laai(..., l2=1e-3)` pick another,
and the dev-set candidates of recipes/laai_select.py are overrides of it (`config.replace`).
Every number is checked at construction: a bad value is a PlanError naming it, before any
training.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import PlanError
from .checks import check_number

Layers = int | Sequence[int] | str


@dataclass(frozen=True)
class LaaiConfig:
    layers: Layers = "all"  # "all", one layer or a list (checked against the model when training)
    steps: int = 60  # at most this many full-batch steps
    lr: float = 0.05
    l1: float = 1e-4  # λ1: the L1 penalty
    l2: float = 0.1  # λ2: the group lasso over heads, in gradient units (the safest without a dev set)
    patience: int = 8  # early stop after this many steps without improvement ...
    min_delta: float = 1e-3  # ... by this much (relative; absolute below 1)
    init_std: float = 1e-3  # Δ starts seeded normal with this std
    survive: float = 0.0  # a head survives at >= survive × the largest head norm (and non-zero)
    proximal: bool = True  # proximal Adam (heads set to exactly zero); False: Adam on CE + penalty

    def __post_init__(self):
        for name, value in (
            ("λ1 (l1)", self.l1),
            ("λ2 (l2)", self.l2),
            ("init_std", self.init_std),
            ("survive", self.survive),
            ("min_delta", self.min_delta),
        ):
            check_number(value, name, minimum=0.0)
        check_number(self.lr, "lr", minimum=0.0, strict=True)
        for name in ("steps", "patience"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise PlanError(f"{name} must be a positive int, got {value!r}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **overrides) -> LaaiConfig:
        """A copy with `overrides` (names of this config's fields) applied and checked."""
        unknown = sorted(set(overrides) - set(self.names()))
        if unknown:
            raise TypeError(f"unknown LAAI setting(s) {unknown}; the settings are {list(self.names())}")
        return dataclasses.replace(self, **overrides)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.names()}

    def hyper(self) -> dict:
        """The training settings as recorded in plan.meta["hyper"] (the layers are recorded apart)."""
        return {k: v for k, v in self.as_dict().items() if k != "layers"}


def check_seed(seed) -> int:
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise PlanError(f"seed must be an int, got {seed!r}")
    return int(seed)


def resolve_config(config: LaaiConfig | None, overrides: dict) -> LaaiConfig:
    """`config` (default LaaiConfig()) with keyword overrides applied."""
    if config is None:
        config = LaaiConfig()
    elif not isinstance(config, LaaiConfig):
        raise PlanError(f"config must be a LaaiConfig, got {type(config).__name__}")
    return config.replace(**overrides) if overrides else config


__all__ = ["LaaiConfig", "Layers", "check_seed", "resolve_config"]
