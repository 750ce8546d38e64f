"""patch(model, plan) -> PatchHandle: one plan on every row; a one-slot SteeringBank."""

from __future__ import annotations

from torch import nn

from ..errors import SteeringError
from ..plan import Intervention, SteeringPlan
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
        """Every intervention's strength, or only intervention `index`'s; written in place."""
        n = len(self.plan.interventions)
        if index is not None and (
            isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n
        ):
            raise SteeringError(
                f"index must be an int in 0..{n - 1} (the plan's interventions), got {index!r}"
            )
        ivs = [
            Intervention(
                iv.layer,
                iv.site,
                iv.kind,
                iv.tensor,
                iv.positions,
                value if index is None or i == index else iv.strength,
            )
            for i, iv in enumerate(self.plan.interventions)
        ]
        self.plan = SteeringPlan(ivs, self.plan.method, self.plan.model, self.plan.meta, self.plan.condition)
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
