"""`GET /playground` (the page: static files shipped in steerfast/serve/playground/, no CDN)
and `GET /v1/playground/info` (what the page lists: the resident plans with their inspect
summary, the server's monitors).

The page's three static files hold no data and no secret, and are the only paths besides
/health answered without the API key (serve/security.py OPEN_PATHS): a browser cannot send an
Authorization header when it opens a page, so the key is typed into the page and sent as a
header with every API call it makes (never in a URL); everything the page shows comes from
those calls, behind the key like every other route.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from ...plan import describe as describe_plan

STATIC = {
    "/playground": ("index.html", "text/html; charset=utf-8"),
    "/playground/playground.js": ("playground.js", "text/javascript; charset=utf-8"),
    "/playground/playground.css": ("playground.css", "text/css; charset=utf-8"),
}
PAGE_PATHS = tuple(STATIC)
INFO_PATH = "/v1/playground/info"


def _static(name: str) -> bytes:
    return resources.files("steerfast.serve").joinpath("playground", name).read_bytes()


def plan_summary(name: str, plan) -> dict:
    ivs = plan.interventions
    strengths = {iv.strength for iv in ivs}
    tuned = plan.meta.get("tuned") if isinstance(plan.meta, dict) else None
    return {
        "name": name,
        "method": plan.method,
        "interventions": len(ivs),
        "layers": sorted({iv.layer for iv in ivs}),
        "sites": sorted({f"{iv.layer}:{iv.site}" for iv in ivs}),
        "positions": sorted({iv.positions for iv in ivs}),
        "strength": strengths.pop() if len(strengths) == 1 else None,
        "tuned": tuned,
        "summary": describe_plan(plan),
    }


def playground_router(engine, model_name: str) -> APIRouter:
    router = APIRouter()
    pages = {path: (_static(f), media) for path, (f, media) in STATIC.items()}  # read once

    def page(path: str):
        body, media = pages[path]
        return lambda: Response(body, media_type=media, headers={"Cache-Control": "no-store"})

    for path in STATIC:
        router.add_api_route(path, page(path), methods=["GET"], include_in_schema=False)

    @router.get(INFO_PATH)
    async def info():
        plans = sorted((name, plan) for name, (_v, plan) in dict(engine.plans).items())
        monitors = getattr(engine, "monitors", None)
        return {
            "model": model_name,
            "plans": [plan_summary(n, p) for n, p in plans],
            "monitors": [] if monitors is None else monitors.describe(),
        }

    return router


__all__ = ["playground_router", "PAGE_PATHS", "INFO_PATH"]
