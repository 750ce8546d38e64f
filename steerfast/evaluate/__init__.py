"""Evaluation harness shared by every method."""

from .stats import Accuracy, beats, wilson_interval

__all__ = ["Accuracy", "beats", "wilson_interval"]
