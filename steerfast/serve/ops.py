"""What `create_app` sets up around the routes: the security middleware, the access log and
metrics, and the plan store (`--plan-dir`) with the plans it restores at start."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import FastAPI

from .metrics import ServeMetrics
from .observe import ObserveMiddleware
from .plan_store import PlanStore
from .plans_api import EngineRegistry
from .routes.plans import restore
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
    registry: EngineRegistry
    metrics: ServeMetrics
    restored: list[str]


def install(app: FastAPI, engine, config: OpsConfig | None = None) -> Ops:
    config = config or OpsConfig()
    config.security.check()
    store = PlanStore(config.plan_dir)
    registry = EngineRegistry(engine, config.max_plan_table_bytes)
    restored = restore(registry, store)
    admission = Admission()
    metrics = ServeMetrics(engine, in_flight=lambda: admission.in_flight)
    registry.on_remove.append(metrics.forget_plan)
    # add_middleware wraps: the last added is outermost, so the access log sees every refusal
    app.add_middleware(SecurityMiddleware, config=config.security, admission=admission)
    app.add_middleware(ObserveMiddleware, metrics=metrics, log_prompts=config.log_prompts)
    ops = Ops(config, admission, store, registry, metrics, restored)
    app.state.ops = ops
    return ops


__all__ = ["OpsConfig", "Ops", "install"]
