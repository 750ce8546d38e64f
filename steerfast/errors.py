"""Exceptions raised for bad input; every one names the problem."""


class SteeringError(ValueError):
    """Base class of steerfast's input errors."""


class PlanError(SteeringError):
    """A plan is malformed, corrupt, or does not fit the model."""


class UnsupportedModelError(SteeringError):
    """The model's architecture has no adapter."""


class ModelNotFoundError(SteeringError, FileNotFoundError):
    """A model name or path could not be resolved."""
