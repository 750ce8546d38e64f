"""OpenAI-shaped errors for every status, 500 included: {"error": {"message", "type", "param",
"code"}}. `as_http` maps every exception a request can meet to the status / code the client
gets; `install_error_handlers` makes a FastAPI app answer with that shape."""

from __future__ import annotations

import asyncio
import logging
import math

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from ..errors import SteeringError
from .exceptions import EngineBusy, EngineOverloaded, EngineUnavailable, GenerationFailed, UnknownPlan
from .openai_fields import FieldError

log = logging.getLogger("steerfast.serve")


class HTTPError(Exception):
    def __init__(self, status: int, message: str, code: str, param: str | None = None, headers=None):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.headers = headers or {}


def error_body(status: int, message: str, code: str, param: str | None = None) -> dict:
    kind = {401: "authentication_error", 403: "permission_error", 404: "not_found_error"}.get(
        status, "invalid_request_error" if status < 500 else "server_error"
    )
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


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


def install_error_handlers(app: FastAPI) -> None:
    """Every exception a route lets out, as an OpenAI-shaped JSON answer."""

    async def handle(request, exc):
        return error_response(exc)

    for kind in (HTTPError, FieldError, SteeringError, Exception):
        app.add_exception_handler(kind, handle)


__all__ = ["HTTPError", "error_body", "as_http", "error_response", "install_error_handlers"]
