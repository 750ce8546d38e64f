"""What `create_app` adds around the OpenAI routes: the security middleware, the access log
and metrics, the plan routes with `--plan-dir` persistence, `/metrics` and `/v1/steering/stats`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from fastapi import FastAPI
from fastapi.responses import Response

from .metrics import ServeMetrics
from .observe import ObserveMiddleware
from .plan_store import PlanStore
from .plans_api import plans_router, restore
from .security import Admission, SecurityConfig, SecurityMiddleware


@dataclass
class OpsConfig:
    security: SecurityConfig = field(default_factory=SecurityConfig)
    plan_dir: str | None = None  # None: uploads live in memory only
    max_plan_table_bytes: int = 256 << 20  # bank tables one plan may make the bank allocate
    log_prompts: bool = False


@dataclass
class Ops:
    """What install() made; `app.state.ops` holds it (the CLI drains through `admission`)."""

    config: OpsConfig
    admission: Admission
    store: PlanStore
    metrics: ServeMetrics
    restored: list[str]


def install(app: FastAPI, engine, config: OpsConfig | None = None) -> Ops:
    config = config or OpsConfig()
    config.security.check()
    store = PlanStore(config.plan_dir)
    restored = restore(engine, store, config.max_plan_table_bytes)
    admission = Admission()
    metrics = ServeMetrics(engine, in_flight=lambda: admission.in_flight)
    app.include_router(plans_router(engine, store, config.max_plan_table_bytes))

    @app.get("/metrics")
    async def prometheus_metrics():
        body, ctype = metrics.render()
        return Response(body, media_type=ctype)

    @app.get("/v1/steering/stats")
    async def stats():
        """The engine's figures as JSON (the same numbers /metrics exposes, for scripts);
        a histogram's last bucket bound (infinity) is written "+Inf", as Prometheus does."""
        return _json_safe(engine.metrics())

    # add_middleware wraps: the last added is outermost, so the access log sees every refusal
    app.add_middleware(SecurityMiddleware, config=config.security, admission=admission)
    app.add_middleware(ObserveMiddleware, metrics=metrics, log_prompts=config.log_prompts)
    ops = Ops(config, admission, store, metrics, restored)
    app.state.ops = ops
    return ops


def _json_safe(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "+Inf" if v > 0 else "-Inf" if v < 0 else "NaN"
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    return v


__all__ = ["OpsConfig", "Ops", "install"]
