from .patch import PatchHandle, patch

__all__ = ["patch", "PatchHandle"]
