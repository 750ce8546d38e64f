"""Patching vLLM's classes once per process (vLLM loads general plugins in every process and
may call register() again): a wrapped method is marked, and a marked one is never wrapped twice."""

from __future__ import annotations

MARK = "_steerfast_patched"


def patch_once(cls, name: str, wrapper) -> None:
    """cls.name = wrapper(cls.name), unless it is already steerfast's wrapper."""
    current = getattr(cls, name)
    if not getattr(current, MARK, False):
        wrapped = wrapper(current)
        setattr(wrapped, MARK, True)
        setattr(cls, name, wrapped)
