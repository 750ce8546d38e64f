from .bank import SteeringBank
from .patch import PatchHandle, patch

__all__ = ["patch", "PatchHandle", "SteeringBank"]
