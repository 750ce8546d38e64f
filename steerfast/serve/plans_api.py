"""Plan management routes (list / upload / delete) and restoring `--plan-dir` at start.

Who may call them is the security middleware's business (API key to list; admin key, or
`--allow-plan-uploads`, to upload and delete); its byte limit is counted while the upload
streams, and this route writes each chunk to disk as it comes, so the server holds one
chunk of an upload in memory, never the whole file.
"""

from __future__ import annotations

import asyncio
import os
import threading

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..errors import SteeringError
from ..plan import SteeringPlan
from .plan_budget import check_budget
from .plan_store import PlanStore
from .security import error_json

MAX_NAME = 64


def _error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse(error_json(status, message, code), status_code=status)


def check_name(name) -> None:
    if (
        not isinstance(name, str)
        or not name
        or len(name) > MAX_NAME
        or not all(c.isalnum() or c in "-_." for c in name)
        or name.strip(".") == ""
    ):
        raise SteeringError(
            f"plan name must be 1-{MAX_NAME} characters of letters, digits, '-', '_', '.' "
            f"(not only dots), got {name!r}"
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


def restore(engine, store: PlanStore, table_budget: int) -> list[str]:
    """Load every complete plan file of the store (at start); a bad file stops the start."""
    store.clear_partials()
    names = []
    for name, path in store.saved().items():
        try:
            check_name(name)
            add_checked(engine, name, load_plan_file(path), table_budget)
        except SteeringError as exc:
            raise SteeringError(f"--plan-dir file {path}: {exc}") from None
        names.append(name)
    return names


def plans_router(engine, store: PlanStore, table_budget: int) -> APIRouter:
    from .engine import EngineBusy, UnknownPlan

    router = APIRouter()
    files = threading.Lock()  # engine + file change together: a delete cannot slip between them

    @router.get("/v1/steering/plans")
    async def list_plans():
        with engine._lock:
            items = list(engine.plans.items())
        return {
            "object": "list",
            "slots": engine.bank.slots,
            "data": [
                {
                    "name": n,
                    "method": p.method,
                    "interventions": len(p.interventions),
                    "sites": sorted({f"{iv.layer}:{iv.site}" for iv in p.interventions}),
                    "positions": sorted({iv.positions for iv in p.interventions}),
                }
                for n, (_, p) in items
            ],
        }

    @router.post("/v1/steering/plans")
    async def upload_plan(request: Request, name: str = ""):
        """Body: the plan's safetensors file (as SteeringPlan.save writes it); ?name=..."""
        try:
            check_name(name)
        except SteeringError as exc:
            return _error(400, str(exc), "invalid_plan_name")
        if name in engine.plans:  # before reading a byte (add_plan checks again, under its lock)
            return _error(409, f"a plan named {name!r} is already loaded; delete it first", "plan_exists")
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
                    add_checked(engine, name, plan, table_budget)
                    try:
                        store.commit(partial, name)
                    except BaseException:
                        engine.remove_plan(name)
                        raise
                return plan

            try:
                plan = await asyncio.to_thread(install)
            except EngineBusy as exc:
                return _error(409, str(exc), "bank_full")
            except SteeringError as exc:
                if "already loaded" in str(exc):
                    return _error(409, str(exc), "plan_exists")
                code = "plan_over_budget" if "--max-plan-table-bytes" in str(exc) else "invalid_plan"
                return _error(422, str(exc), code)
        finally:
            store.discard(partial)
        return JSONResponse(
            {"name": name, "method": plan.method, "interventions": len(plan.interventions)}, status_code=201
        )

    @router.delete("/v1/steering/plans/{name}")
    async def delete_plan(name: str):
        def remove():
            with files:
                engine.remove_plan(name)
                store.delete(name)

        try:
            await asyncio.to_thread(remove)
        except UnknownPlan:
            return _error(404, f"no plan named {name!r}", "unknown_plan")
        return {"name": name, "deleted": True}

    return router


__all__ = ["plans_router", "restore", "check_name", "add_checked", "load_plan_file"]
