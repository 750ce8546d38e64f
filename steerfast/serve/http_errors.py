"""OpenAI-shaped errors for every status, 500 included: {"error": {"message", "type", "param",
"code"}}. `as_http` maps every exception a request can meet to the status / code the client
gets; `install_error_handlers` makes a FastAPI app answer with that shape."""

from __future__ import annotations

import asyncio
import logging
import math

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import SteeringError
from .exceptions import EngineBusy, EngineOverloaded, EngineUnavailable, GenerationFailed, UnknownPlan
from .openai_fields import FieldError
from .security import error_json

log = logging.getLogger("steerfast.serve")


class HTTPError(Exception):
    def __init__(self, status: int, message: str, code: str, param: str | None = None, headers=None):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.headers = headers or {}


def error_body(status: int, message: str, code: str, param: str | None = None) -> dict:
    return error_json(status, message, code, param)


def as_http(exc: BaseException) -> HTTPError:
    """Every exception a request can meet, as the status / code the client gets."""
    if isinstance(exc, HTTPError):
        return exc
    if isinstance(exc, FieldError):
        return HTTPError(400, exc.message, exc.code, exc.param)
    if isinstance(exc, UnknownPlan):
        return HTTPError(404, str(exc), "unknown_plan", "steering")
    if isinstance(exc, EngineBusy):
        return HTTPError(429, str(exc), "slots_full", headers={"Retry-After": "1"})
    if isinstance(exc, SteeringError):
        return HTTPError(400, str(exc), "invalid_request")
    if isinstance(exc, EngineOverloaded):
        retry = str(max(1, math.ceil(exc.retry_after_s)))
        return HTTPError(503, str(exc), "overloaded", headers={"Retry-After": retry})
    if isinstance(exc, EngineUnavailable):
        return HTTPError(503, str(exc), "unavailable", headers={"Retry-After": "5"})
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return HTTPError(504, f"timed out: {exc}", "timeout", headers={"Retry-After": "1"})
    if isinstance(exc, GenerationFailed):
        return HTTPError(500, str(exc), "generation_failed")
    return HTTPError(500, f"internal error: {type(exc).__name__}: {exc}", "internal_error")


def error_response(exc: BaseException) -> JSONResponse:
    e = as_http(exc)
    if e.status >= 500:
        log.error("request failed: %s", e.message, exc_info=e.code == "internal_error")
    return JSONResponse(
        error_body(e.status, e.message, e.code, e.param), status_code=e.status, headers=e.headers
    )


ROUTING_CODES = {404: "not_found", 405: "method_not_allowed"}


def routing_error(exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's own answers (no such route, a method the route lacks: its Allow header
    kept) in the OpenAI shape instead of {"detail": ...}."""
    code = ROUTING_CODES.get(exc.status_code, "invalid_request")
    body = error_body(exc.status_code, str(exc.detail), code)
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def validation_error(exc: RequestValidationError) -> JSONResponse:
    first = (exc.errors() or [{}])[0]
    where = [str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body")]
    param = ".".join(where) or None
    msg = f"{param or 'the request'}: {first.get('msg', 'invalid')}"
    return JSONResponse(error_body(400, msg, "invalid_request", param), status_code=400)


def install_error_handlers(app: FastAPI) -> None:
    """Every exception a route lets out, and the router's own 404 / 405 / validation errors,
    as an OpenAI-shaped JSON answer."""

    async def handle(request, exc):
        return error_response(exc)

    async def routing(request, exc):
        return routing_error(exc)

    async def invalid(request, exc):
        return validation_error(exc)

    for kind in (HTTPError, FieldError, SteeringError, Exception):
        app.add_exception_handler(kind, handle)
    app.add_exception_handler(StarletteHTTPException, routing)
    app.add_exception_handler(RequestValidationError, invalid)


__all__ = [
    "HTTPError",
    "error_body",
    "as_http",
    "error_response",
    "install_error_handlers",
    "routing_error",
]
