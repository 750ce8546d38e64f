"""Named plans on the server's side: the name rule, reading a plan file, and the Engine's
plans as the registry the plan routes (serve/routes/plans.py) manage.

Nothing here imports the engine (it is passed in), so the plan routes stay importable
without it.
"""

from __future__ import annotations

from ..errors import SteeringError
from ..plan import SteeringPlan
from .plan_budget import check_budget

MAX_NAME = 64


NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def check_name(name) -> None:
    """1-64 ASCII letters, digits, '-', '_', '.', starting with a letter or digit: a name that
    round-trips through `--plan-dir` as `<name>.safetensors` (a leading '.' would make a hidden
    file that the store never lists; non-ASCII letters may be renormalised by the filesystem)."""
    if (
        not isinstance(name, str)
        or not 1 <= len(name) <= MAX_NAME
        or not set(name) <= NAME_CHARS
        or not name[0].isalnum()
    ):
        raise SteeringError(
            f"plan name must be 1-{MAX_NAME} ASCII letters, digits, '-', '_' or '.', starting "
            f"with a letter or digit, got {name!r}"
        )


def load_plan_file(path) -> SteeringPlan:
    try:
        return SteeringPlan.load(path)
    except SteeringError:
        raise
    except Exception as exc:  # safetensors / JSON header parse errors
        raise SteeringError(f"not a steerfast plan file: {exc}") from None


def add_checked(engine, name: str, plan: SteeringPlan, table_budget: int) -> None:
    """Model fit, bank table budget, then the engine (which refuses a taken name / full bank)."""
    plan.validate(engine.model)
    check_budget(engine.model, plan, engine.bank.slots, table_budget, name)
    engine.add_plan(name, plan)


class EngineRegistry:
    """The Engine's named plans as a routes.plans.PlanRegistry: an added plan is checked
    against the model and the bank's table budget (`--max-plan-table-bytes`) first."""

    def __init__(self, engine, table_budget: int):
        self.engine, self.table_budget = engine, table_budget
        self.on_remove: list = []  # called with the name of each plan removed (metrics series)

    @property
    def slots(self) -> int:
        return self.engine.bank.slots

    def list(self) -> list[tuple[str, SteeringPlan]]:
        with self.engine._lock:
            return [(n, p) for n, (_, p) in self.engine.plans.items()]

    def get(self, name: str) -> SteeringPlan | None:
        held = self.engine.plans.get(name)
        return held[1] if held is not None else None

    def add(self, name: str, plan: SteeringPlan) -> None:
        add_checked(self.engine, name, plan, self.table_budget)

    def remove(self, name: str) -> None:
        self.engine.remove_plan(name)
        for hook in self.on_remove:
            hook(name)


__all__ = ["EngineRegistry", "check_name", "add_checked", "load_plan_file"]
