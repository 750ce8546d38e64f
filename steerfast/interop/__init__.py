"""Bring your own vectors: GGUF control vectors (llama.cpp, repeng) and peers' objects/files.

See docs/interop.md for the layer mapping and the llama.cpp cross-check.
"""

from .controlvector import ControlVectorFile, check_fits, export_gguf, import_gguf, import_ggufs, read
from .files import load_plan, save_plan
from .layers import direction_of, layer_of_direction
from .peers import from_repeng, from_steering_vector, load_steering_vector_file

__all__ = [
    "import_gguf",
    "import_ggufs",
    "export_gguf",
    "read",
    "check_fits",
    "ControlVectorFile",
    "load_plan",
    "save_plan",
    "from_steering_vector",
    "from_repeng",
    "load_steering_vector_file",
    "layer_of_direction",
    "direction_of",
]
