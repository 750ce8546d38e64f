"""steerfast.tune: choose a plan family's layer and strength by measured effect against
measured damage on held-out data (docs/tuning.md)."""

from .choose import Budget, TuneRefused, choose
from .families import FAMILIES, family
from .grid import Grid, make_grid
from .run import TuneResult, tune

__all__ = ["tune", "TuneResult", "TuneRefused", "Budget", "choose", "Grid", "make_grid", "FAMILIES", "family"]
