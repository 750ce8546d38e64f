"""`GET /health`, `GET /v1/models`, `GET /metrics` (Prometheus) and `GET /v1/steering/stats`."""

from __future__ import annotations

import math

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response


def status_router(engine, model_name: str, served_names=(), metrics=None) -> APIRouter:
    """Liveness, the served model names, and the server's figures (`metrics`: a ServeMetrics,
    None for no /metrics). Each answers HEAD too (the GET's status and headers, no body)."""
    router = APIRouter()

    @router.api_route("/health", methods=["GET", "HEAD"])
    async def health():
        ok, reason = engine.health()
        body = {"status": "ok" if ok else "unavailable", "model": model_name, "running": ok, "reason": reason}
        return JSONResponse(body, status_code=200 if ok else 503)

    @router.api_route("/v1/models", methods=["GET", "HEAD"])
    async def models():
        data = [{"id": n, "object": "model", "owned_by": "steerfast"} for n in [model_name, *served_names]]
        return {"object": "list", "data": data}

    if metrics is not None:

        @router.api_route("/metrics", methods=["GET", "HEAD"])
        async def prometheus_metrics():
            body, ctype = metrics.render()
            return Response(body, media_type=ctype)

    @router.api_route("/v1/steering/stats", methods=["GET", "HEAD"])
    async def stats():
        """The engine's figures as JSON (the same numbers /metrics exposes, for scripts);
        a histogram's last bucket bound (infinity) is written "+Inf", as Prometheus does."""
        return json_safe(engine.metrics())

    return router


def json_safe(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "+Inf" if v > 0 else "-Inf" if v < 0 else "NaN"
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    return v


__all__ = ["status_router", "json_safe"]
