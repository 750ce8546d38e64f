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


class PlanRoutes:
    """What the routes do, over one registry and store."""

    def __init__(self, registry: PlanRegistry, store: PlanStore, authorize):
        self.registry, self.store, self.authorize = registry, store, authorize
        self.files = threading.Lock()  # registry + file change together: no delete slips between

    def list(self) -> dict:
        items = self.registry.list()
        return {"object": "list", "slots": self.registry.slots, "data": [describe(n, p) for n, p in items]}

    async def upload(self, request: Request, name: str) -> JSONResponse:
        try:
            if self.authorize is not None:
                self.authorize(request)
            check_name(name)
        except Refused as exc:
            return _refusal(exc)
        except SteeringError as exc:
            return _error(400, str(exc), "invalid_plan_name", "name")
        if self.registry.get(name) is not None:  # before reading a byte (add checks again, locked)
            return _error(
                409, f"a plan named {name!r} is already loaded; delete it first", "plan_exists", "name"
            )
        partial, f = self.store.open_partial(name)
        try:
            if await _receive(request, f) == 0:
                return _error(
                    400, "empty upload: send the plan's .safetensors bytes as the body", "invalid_plan"
                )
            try:
                plan = await asyncio.to_thread(self._install, partial, name)
            except SteeringError as exc:
                return _add_error(exc)
        finally:
            self.store.discard(partial)
        body = {"name": name, "method": plan.method, "interventions": len(plan.interventions)}
        return JSONResponse(body, status_code=201)

    def _install(self, partial, name: str) -> SteeringPlan:
        """Load and validate the written file, add it, then make it the plan's file (201 only
        once it is durable); the registry is rolled back if the file cannot be committed."""
        plan = load_plan_file(partial)
        with self.files:
            self.registry.add(name, plan)
            try:
                self.store.commit(partial, name)
            except BaseException:
                self.registry.remove(name)
                raise
        return plan

    async def delete(self, request: Request, name: str):
        if self.authorize is not None:
            try:
                self.authorize(request)
            except Refused as exc:
                return _refusal(exc)

        def remove():
            with self.files:
                self.registry.remove(name)
                self.store.delete(name)

        try:
            await asyncio.to_thread(remove)
        except UnknownPlan:
            return _error(404, f"no plan named {name!r}", "unknown_plan", "name")
        return {"name": name, "deleted": True}


async def _receive(request: Request, f) -> int:
    """Write the body into `f` chunk by chunk as it streams in, fsync it; the bytes written."""
    n = 0
    with f:
        async for chunk in request.stream():  # steerfast's middleware counts against the limit
            if chunk:
                f.write(chunk)
                n += len(chunk)
        f.flush()
        await asyncio.to_thread(os.fsync, f.fileno())
    return n


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
    routes = PlanRoutes(registry, store if store is not None else PlanStore(None), authorize)
    router = APIRouter()

    @router.api_route(PLANS_PATH, methods=["GET", "HEAD"])
    async def list_plans():
        return routes.list()

    @router.post(PLANS_PATH)
    async def upload_plan(request: Request, name: str = ""):
        """Body: the plan's safetensors file (as SteeringPlan.save writes it); ?name=..."""
        return await routes.upload(request, name)

    @router.delete(PLANS_PATH + "/{name}")
    async def delete_plan(request: Request, name: str):
        return await routes.delete(request, name)

    return router


__all__ = ["plans_router", "PlanRoutes", "PlanRegistry", "DictRegistry", "describe", "restore", "PLANS_PATH"]
