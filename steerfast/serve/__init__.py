"""Serving: per-request steering on transformers' continuous-batching engine (`steerfast serve`)."""

from .engine import Engine, EngineBusy, SteerEntry

__all__ = ["Engine", "EngineBusy", "SteerEntry"]
