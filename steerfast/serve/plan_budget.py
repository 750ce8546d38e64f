"""How much table memory a plan makes the server's SteeringBank allocate, and the budget check.

The bank preallocates, for every (module, side, lane) a loaded plan steers, tables for all S
slots with E entries each (E: the most entries of any intervention): a (S*E, D) fp32 table
and a (S*E,) strength column per part (scale: mask + coef, add: delta + bias). This repeats
`SteeringBank._rebuild` / `_allocate` for the plan alone, without touching the bank, so an
upload is refused before the bank would allocate (the number is a lower bound: a plan that
shares the bank with others needs at least this).
"""

from __future__ import annotations

from ..adapters import get_adapter
from ..plan import SteeringPlan
from ..runtime.lanes import slot_groups
from .exceptions import PlanOverBudget

FLOAT_BYTES = 4  # the bank's tables are fp32 whatever the model's dtype


def table_bytes(model, plan: SteeringPlan, slots: int) -> int:
    groups = slot_groups(get_adapter(model), model, [plan])
    entries = max([iv.entries for iv in plan.interventions] or [1])
    parts: dict[tuple, list] = {}
    for _slot, lane, _policy, module, side, aff in groups:
        dim = (aff.mask if aff.mask is not None else aff.bias).shape[1]
        flags = parts.setdefault((id(module), side, lane), [dim, False, False])
        flags[1] |= aff.mask is not None
        flags[2] |= aff.bias is not None
    per_row = sum((dim + 1) * (int(scale) + int(add)) for dim, scale, add in parts.values())
    return FLOAT_BYTES * slots * entries * per_row


def check_budget(model, plan: SteeringPlan, slots: int, budget_bytes: int, name: str) -> int:
    """The plan's table bytes; a PlanOverBudget (a PlanError) naming the budget when over it."""
    need = table_bytes(model, plan, slots)
    if need > budget_bytes:
        raise PlanOverBudget(
            f"plan {name!r} needs {need} bytes of bank tables ({slots} slots x its sites and "
            f"entries); this server's budget (--max-plan-table-bytes) is {budget_bytes}"
        )
    return need


__all__ = ["table_bytes", "check_budget"]
