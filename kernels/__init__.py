"""Triton kernels of the steerfast ops (the CUDA implementations; see steerfast/ops/library.py).

Importing needs triton but no GPU; under TRITON_INTERPRET=1 (set before this package is
imported) the kernels run on CPU tensors through the Triton interpreter.
"""

from .steer_ablate import launch_steer_ablate, steer_ablate_
from .steer_linear import launch_steer_linear, steer_linear
from .steer_rows import launch_steer_rows, steer_rows_

__all__ = [
    "steer_ablate_",
    "launch_steer_ablate",
    "steer_rows_",
    "steer_linear",
    "launch_steer_rows",
    "launch_steer_linear",
]
