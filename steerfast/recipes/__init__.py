from .actadd import actadd
from .caa import caa

__all__ = ["actadd", "caa"]
