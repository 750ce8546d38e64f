"""steerfast: fast inference-time steering of Hugging Face causal LMs."""

from .adapters import Adapter, register_architecture
from .errors import ModelNotFoundError, PlanError, SteeringError, UnsupportedModelError
from .hooks import apply_hooks
from .plan import Intervention, SteeringPlan
from .runtime import PatchHandle, SteeringBank, patch

__version__ = "0.1.0"
__all__ = [
    "register_architecture",
    "Adapter",
    "patch",
    "PatchHandle",
    "SteeringBank",
    "apply_hooks",
    "SteeringPlan",
    "Intervention",
    "SteeringError",
    "PlanError",
    "UnsupportedModelError",
    "ModelNotFoundError",
]
