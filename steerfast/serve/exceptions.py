"""The serving layer's exceptions, in a leaf module: the HTTP routes (and a plan router mounted
on another server) map them to statuses without importing the engine."""

from __future__ import annotations

from ..errors import PlanError, SteeringError


class EngineBusy(SteeringError):
    """Every slot holds a configuration that requests in flight still use (or the bank is full)."""


class UnknownPlan(SteeringError):
    pass


class PlanExists(SteeringError):
    """A plan of that name is already loaded (delete it first)."""


class PlanOverBudget(PlanError):
    """A plan whose bank tables would exceed the server's --max-plan-table-bytes."""


class EngineOverloaded(Exception):
    """Too many requests waiting (`max_waiting`): the HTTP layer answers 503/429 + Retry-After."""

    def __init__(self, message: str, retry_after_s: float = 1.0):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class EngineUnavailable(Exception):
    """The engine is stopped, draining, or its manager loop could not be restarted (-> 503)."""


class GenerationFailed(RuntimeError):
    """The step computing this request raised, or the request made no progress (-> 500)."""


__all__ = [
    "EngineBusy",
    "UnknownPlan",
    "PlanExists",
    "PlanOverBudget",
    "EngineOverloaded",
    "EngineUnavailable",
    "GenerationFailed",
]
