"""patch(model, plan) -> PatchHandle: one plan on every row; a one-slot SteeringBank."""

from __future__ import annotations

from torch import nn

from ..errors import SteeringError
from ..plan import SteeringPlan
from .bank import SteeringBank


class PatchHandle:
    """A live patch. Use as a context manager, or call revert()."""

    def __init__(self, bank: SteeringBank, plan: SteeringPlan):
        self.bank = bank
        self.plan = plan

    @property
    def model(self) -> nn.Module:
        return self.bank.model

    @property
    def active(self) -> bool:
        return self.bank.active

    def set_strength(self, value: float, index: int | None = None) -> None:
        """Every intervention's strength, or only intervention `index`'s (SteeringPlan.with_strength);
        written in place."""
        self.plan = self.plan.with_strength(value, index)
        self.bank.load(0, self.plan)

    def revert(self) -> None:
        self.bank.revert()

    def describe(self) -> list[dict]:
        """Per patched module: its path and which realisation it runs ('fast' or 'wrapped')."""
        return self.bank.describe()

    def __enter__(self) -> PatchHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.revert()


def patch(model: nn.Module, plan: SteeringPlan) -> PatchHandle:
    """Apply `plan` to every row of `model` in place. Validates first: on error nothing is patched."""
    if not isinstance(plan, SteeringPlan):
        raise SteeringError(f"patch() needs a SteeringPlan, got {type(plan).__name__}")
    plan.validate(model)
    bank = SteeringBank(model, slots=1)
    try:
        bank.load(0, plan)
        bank.assign_all(0)
    except BaseException:
        bank.revert()
        raise
    bank.single_plan = True
    return PatchHandle(bank, plan)
