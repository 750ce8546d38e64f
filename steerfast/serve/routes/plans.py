"""Named-plan management routes: `GET /v1/steering/plans` (list), `POST /v1/steering/plans?name=`
(upload a plan's .safetensors bytes), `DELETE /v1/steering/plans/{name}`, with `--plan-dir`
durability (serve/plan_store.py: 201 only once the file is fsynced and renamed into place).

The router works on any `PlanRegistry` (the Engine's named plans through
`plans_api.EngineRegistry`, a vLLM plugin's own table, `DictRegistry` in tests) and takes the
admin check as a parameter, so another FastAPI app can mount it:

    app.include_router(plans_router(my_registry, PlanStore(plan_dir), admin_check(key)))

This module imports neither the engine nor transformers' continuous batching. An upload is
written to disk chunk by chunk as it streams in; the server never holds the whole file.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ...errors import SteeringError
from ...plan import SteeringPlan
from ..exceptions import EngineBusy, PlanExists, PlanOverBudget, UnknownPlan
from ..http_errors import error_body
from ..plan_store import PlanStore
from ..plans_api import check_name, load_plan_file
from ..security import Refused

PLANS_PATH = "/v1/steering/plans"


class PlanRegistry(Protocol):
    """Named plans a server holds. `add` validates (raising SteeringError, PlanExists for a
    taken name, EngineBusy when full) and changes nothing on error; `remove` raises UnknownPlan."""

    slots: int | None  # how many plans it can hold (None: no fixed number)

    def list(self) -> list[tuple[str, SteeringPlan]]: ...

    def get(self, name: str) -> SteeringPlan | None: ...

    def add(self, name: str, plan: SteeringPlan) -> None: ...

    def remove(self, name: str) -> None: ...


class DictRegistry:
    """A PlanRegistry in a dict: `validate(plan)` (if given) runs before a plan is added."""

    def __init__(self, validate: Callable[[SteeringPlan], None] | None = None, slots: int | None = None):
        self.validate, self.slots = validate, slots
        self._plans: dict[str, SteeringPlan] = {}
        self._lock = threading.Lock()

    def list(self) -> list[tuple[str, SteeringPlan]]:
        with self._lock:
            return list(self._plans.items())

    def get(self, name: str) -> SteeringPlan | None:
        return self._plans.get(name)

    def add(self, name: str, plan: SteeringPlan) -> None:
        if self.validate is not None:
            self.validate(plan)
        with self._lock:
            if name in self._plans:
                raise PlanExists(f"a plan named {name!r} is already loaded; delete it first")
            if self.slots is not None and len(self._plans) >= self.slots:
                raise EngineBusy(
                    f"{len(self._plans)} plans held, the limit is {self.slots}; delete one first"
                )
            self._plans[name] = plan

    def remove(self, name: str) -> None:
        with self._lock:
            if self._plans.pop(name, None) is None:
                raise UnknownPlan(f"no plan named {name!r}")


def describe(name: str, plan: SteeringPlan) -> dict:
    return {
        "name": name,
        "method": plan.method,
        "interventions": len(plan.interventions),
        "sites": sorted({f"{iv.layer}:{iv.site}" for iv in plan.interventions}),
        "positions": sorted({iv.positions for iv in plan.interventions}),
    }


def restore(registry: PlanRegistry, store: PlanStore) -> list[str]:
    """Load every complete plan file of the store (at start); a bad file stops the start."""
    store.clear_partials()
    names = []
    for name, path in store.saved().items():
        try:
            check_name(name)
            registry.add(name, load_plan_file(path))
        except SteeringError as exc:
            raise SteeringError(f"--plan-dir file {path}: {exc}") from None
        names.append(name)
    return names


def _error(status: int, message: str, code: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, code, param), status_code=status)


def _refusal(exc: Refused) -> JSONResponse:
    return JSONResponse(
        error_body(exc.status, exc.message, exc.code), status_code=exc.status, headers=exc.headers
    )


def _add_error(exc: SteeringError) -> JSONResponse:
    if isinstance(exc, PlanExists):
        return _error(409, str(exc), "plan_exists", "name")
    if isinstance(exc, EngineBusy):
        return _error(409, str(exc), "bank_full")
    return _error(422, str(exc), "plan_over_budget" if isinstance(exc, PlanOverBudget) else "invalid_plan")


def plans_router(
    registry: PlanRegistry,
    store: PlanStore | None = None,
    authorize: Callable[[Request], None] | None = None,
) -> APIRouter:
    """The plan routes over `registry`. `store`: where uploads are written (a PlanStore on
    --plan-dir survives restarts; None: a temporary directory). `authorize(request)` runs
    before an upload or delete reads anything and raises security.Refused to refuse it
    (security.admin_check(admin_key) builds one); None: no check here (steerfast's own
    server checks keys in its middleware)."""
    store = store if store is not None else PlanStore(None)
    router = APIRouter()
    files = threading.Lock()  # registry + file change together: a delete cannot slip between them

    @router.get(PLANS_PATH)
    async def list_plans():
        items = registry.list()
        return {"object": "list", "slots": registry.slots, "data": [describe(n, p) for n, p in items]}

    @router.post(PLANS_PATH)
    async def upload_plan(request: Request, name: str = ""):
        """Body: the plan's safetensors file (as SteeringPlan.save writes it); ?name=..."""
        try:
            if authorize is not None:
                authorize(request)
            check_name(name)
        except Refused as exc:
            return _refusal(exc)
        except SteeringError as exc:
            return _error(400, str(exc), "invalid_plan_name", "name")
        if registry.get(name) is not None:  # before reading a byte (add checks again, under its lock)
            return _error(
                409, f"a plan named {name!r} is already loaded; delete it first", "plan_exists", "name"
            )
        partial, f = store.open_partial(name)
        try:
            n = 0
            with f:
                async for chunk in request.stream():  # the middleware counts against the limit
                    if chunk:
                        f.write(chunk)
                        n += len(chunk)
                f.flush()
                await asyncio.to_thread(os.fsync, f.fileno())
            if n == 0:
                return _error(
                    400, "empty upload: send the plan's .safetensors bytes as the body", "invalid_plan"
                )

            def install():
                plan = load_plan_file(partial)
                with files:
                    registry.add(name, plan)
                    try:
                        store.commit(partial, name)
                    except BaseException:
                        registry.remove(name)
                        raise
                return plan

            try:
                plan = await asyncio.to_thread(install)
            except SteeringError as exc:
                return _add_error(exc)
        finally:
            store.discard(partial)
        body = {"name": name, "method": plan.method, "interventions": len(plan.interventions)}
        return JSONResponse(body, status_code=201)

    @router.delete(PLANS_PATH + "/{name}")
    async def delete_plan(request: Request, name: str):
        if authorize is not None:
            try:
                authorize(request)
            except Refused as exc:
                return _refusal(exc)

        def remove():
            with files:
                registry.remove(name)
                store.delete(name)

        try:
            await asyncio.to_thread(remove)
        except UnknownPlan:
            return _error(404, f"no plan named {name!r}", "unknown_plan", "name")
        return {"name": name, "deleted": True}

    return router


__all__ = ["plans_router", "PlanRegistry", "DictRegistry", "describe", "restore", "PLANS_PATH"]
