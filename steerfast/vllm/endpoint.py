"""`vllm.endpoint_plugins` entry point: steerfast serve's plan routes on vLLM's own server.

GET /v1/steering/stats answers each worker's steering state (slots and requests held,
monitors, readings waiting). GET / POST / DELETE /v1/steering/plans are steerfast's own router (serve/routes/plans.py),
mounted on vLLM's FastAPI app over a registry that validates an upload in this process
(plan, model, the engine's hooked sites and lanes) and then loads it into every worker with
`collective_rpc`. vLLM's --api-key guards /v1 (give it the admin key too); upload and delete
also need `Authorization: Bearer $STEERFAST_ADMIN_KEY`. Uploads are kept in the engine's
`plan_dir` (additional_config), which every process loads at start: a 201 survives kill -9.
Enable with VLLM_PLUGINS naming "steerfast" (vLLM loads endpoint plugins only when named).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile

from ..errors import SteeringError
from ..plan import SteeringPlan

ADMIN_ENV = "STEERFAST_ADMIN_KEY"
ALLOW_ENV = "STEERFAST_ALLOW_PLAN_UPLOADS"  # no admin key: plan management open to every caller
RPC_TIMEOUT_S = 120.0


def plan_bytes(plan: SteeringPlan) -> bytes:
    fd, path = tempfile.mkstemp(suffix=".safetensors", prefix="steerfast-up-")
    os.close(fd)
    try:
        plan.save(path)
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


class VllmPlans:
    """routes.plans.PlanRegistry over the frontend's EngineState and the engine's workers."""

    def __init__(self):
        self.state = None
        self.engine = None
        self.loop = None

    @property
    def slots(self):
        return None

    def _ready(self):
        if self.state is None:
            from ..serve.exceptions import EngineBusy

            raise EngineBusy("steerfast is not configured on this engine (additional_config 'steerfast')")
        return self.state

    def list(self):
        return [] if self.state is None else sorted(self.state.registry.names().items())

    def get(self, name):
        return None if self.state is None else self.state.registry.names().get(name)

    def add(self, name: str, plan: SteeringPlan) -> None:
        from ..serve.exceptions import PlanExists

        state = self._ready()
        if name in state.registry.names():
            raise PlanExists(f"a plan named {name!r} is already loaded; delete it first")
        data = plan_bytes(plan)
        state.add_plan(name, data)
        try:
            self._rpc("steerfast_add_plan", name, data)
        except BaseException as exc:
            state.registry.remove(name)
            self._rpc_quiet("steerfast_remove_plan", name)
            raise SteeringError(f"the engine's workers refused the plan: {exc}") from None

    def remove(self, name: str) -> None:
        from ..serve.exceptions import UnknownPlan

        state = self._ready()
        if name not in state.registry.names():
            raise UnknownPlan(f"no plan named {name!r}")
        state.registry.remove(name)
        self._rpc_quiet("steerfast_remove_plan", name)

    def _rpc(self, method: str, *args):
        coro = self.engine.collective_rpc(method, args=args)
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(RPC_TIMEOUT_S)

    def _rpc_quiet(self, method: str, *args) -> None:
        with contextlib.suppress(Exception):  # a worker that never had the plan has nothing to forget
            self._rpc(method, *args)


class _LazyStore:
    """The PlanStore on the engine's plan_dir, known only once the engine's config is."""

    def __init__(self):
        self.target = None

    def __getattr__(self, name):
        if self.target is None:
            from ..serve.plan_store import PlanStore

            self.target = PlanStore(None)
        return getattr(self.target, name)


class SteerfastEndpoints:
    name = "steerfast"
    required_tasks = ("generate",)

    def __init__(self):
        self.plans, self.store = VllmPlans(), _LazyStore()

    def attach_router(self, app) -> None:
        from ..serve.routes.plans import plans_router
        from ..serve.security import admin_check

        def authorize(request) -> None:
            allow = os.environ.get(ALLOW_ENV) == "1"
            admin_check(os.environ.get(ADMIN_ENV) or None, allow)(request)

        app.include_router(plans_router(self.plans, self.store, authorize))
        app.include_router(self._stats_router())

    def _stats_router(self):
        """GET /v1/steering/stats: each worker's steerfast_stats (slots, requests, monitors)."""
        from fastapi import APIRouter

        router = APIRouter()

        @router.get("/v1/steering/stats")
        async def stats():
            if self.plans.engine is None or self.plans.state is None:
                return {"engine": "vllm", "active": False, "workers": []}
            workers = await self.plans.engine.collective_rpc("steerfast_stats")
            return {"engine": "vllm", "active": True, "workers": workers}

        return router

    async def init_state(self, engine_client, state, args) -> None:
        from ..serve.plan_store import PlanStore
        from .frontend import engine_state

        if engine_client is None:
            return
        config = engine_client.vllm_config
        self.plans.state = engine_state(config)
        self.plans.engine = engine_client
        self.plans.loop = asyncio.get_running_loop()
        cfg = self.plans.state.cfg if self.plans.state is not None else None
        self.store.target = PlanStore(cfg.plan_dir if cfg is not None else None)
        self.store.target.clear_partials()
