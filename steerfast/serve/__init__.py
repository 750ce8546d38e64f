"""Serving: per-request steering on transformers' continuous-batching engine (`steerfast serve`).

The names below are imported on first use, so `steerfast.serve.routes.plans` can be imported
(by another server mounting the plan routes) without the engine and transformers' internals.
"""

__all__ = ["Engine", "EngineBusy", "SteerEntry"]


def __getattr__(name):
    if name in __all__:
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
