"""steerfast: fast inference-time steering of Hugging Face causal LMs.

The user API: `load` a model, build a plan with a recipe (`steerfast.recipes`: actadd, caa,
sadi, laai), then `patch(model, plan)` (in place, reverted exactly), a `SteeringBank` (one
plan per batch row), or `generate` / `stream` with a per-prompt `Steer`. `apply_hooks` is the
same math with plain forward hooks: the correctness oracle and the benchmark baseline.
docs/architecture.md has the map of the package.
"""

from importlib.metadata import PackageNotFoundError, version

from .adapters import Adapter, register_architecture
from .conditions import Condition, Gate
from .errors import ModelNotFoundError, PlanError, SteeringError, UnsupportedModelError
from .hooks import apply_hooks
from .models import load
from .monitor import Monitor, load_monitors, save_monitors
from .plan import Intervention, SteeringPlan
from .runtime import PatchHandle, SteeringBank, patch
from .steered_generation import Steer, generate, stream

try:
    __version__ = version("steerfast")  # pyproject.toml is the one place the version is written
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "load",
    "generate",
    "stream",
    "Steer",
    "patch",
    "PatchHandle",
    "SteeringBank",
    "SteeringPlan",
    "Intervention",
    "Condition",
    "Monitor",
    "save_monitors",
    "load_monitors",
    "Gate",
    "apply_hooks",
    "register_architecture",
    "Adapter",
    "SteeringError",
    "PlanError",
    "UnsupportedModelError",
    "ModelNotFoundError",
]
