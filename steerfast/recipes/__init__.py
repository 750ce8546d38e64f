from .ablation import ablation
from .actadd import actadd
from .caa import caa
from .condition import condition
from .laai import laai
from .monitor import monitor
from .sadi import sadi

__all__ = ["ablation", "actadd", "caa", "condition", "sadi", "laai", "monitor"]
