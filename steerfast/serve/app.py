"""The OpenAI-compatible HTTP server (FastAPI): `create_app` assembles the routes
(serve/routes/: generation, plans, status), the error handlers (serve/http_errors.py: an
OpenAI-shaped JSON body for every status) and the middleware (serve/ops.py)."""

from __future__ import annotations

from fastapi import FastAPI

from .http_errors import install_error_handlers
from .ops import install
from .routes.generation import chat_prompt, generation_router
from .routes.plans import plans_router
from .routes.playground import playground_router
from .routes.status import status_router


def create_app(engine, model_name: str = "steerfast", ops=None, served_names=()) -> FastAPI:
    """ops: an OpsConfig (steerfast/serve/ops.py: keys, limits, --plan-dir, logs); None = defaults.
    `model` in a request must be `model_name` or one of `served_names` (or absent), else 404."""
    app = FastAPI(title="steerfast serve")
    done = install(app, engine, ops)  # security + access log middleware, plan store, metrics
    install_error_handlers(app)
    app.include_router(status_router(engine, model_name, served_names, done.metrics))
    app.include_router(plans_router(done.registry, done.store))  # keys: the security middleware
    app.include_router(generation_router(engine, model_name, served_names))
    app.include_router(playground_router(engine, model_name))  # + monitor metrics (serve/monitors.py)
    if getattr(engine, "monitors", None) is not None:
        engine.monitors.bind_metrics(done.metrics.registry)
    return app


__all__ = ["create_app", "chat_prompt"]
