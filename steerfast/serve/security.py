"""The server's front door, one ASGI middleware: Host check, API / admin keys, Content-Type,
body byte limits counted while the body is read, request field limits and admission.

Order, each check before anything is buffered: Host (DNS rebinding on loopback) -> keys ->
Content-Type -> Content-Length against the limit -> the streamed byte count -> (generation
routes) prompt characters and steering entries from the parsed JSON -> admission (requests in
flight, draining). Every refusal is OpenAI-shaped JSON, `{"error": {"message", "type", "code"}}`.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from dataclasses import dataclass

from .json_body import parse_body, prompt_chars, steering_names
from .openai_fields import FieldError

GENERATION_PATHS = ("/v1/completions", "/v1/chat/completions")
PLANS_PATH = "/v1/steering/plans"
# answered without a key: liveness probes, and the playground page's static files (no data,
# no secret: the page sends the typed key with its API calls; serve/routes/playground.py)
OPEN_PATHS = ("/health", "/playground", "/playground/playground.js", "/playground/playground.css")


@dataclass
class SecurityConfig:
    api_key: str | None = None  # every endpoint but /health needs it (or the admin key)
    admin_key: str | None = None  # plan upload / delete need it
    allow_plan_uploads: bool = False  # with no admin key: plan management on for every caller
    bind_host: str | None = None  # where the server listens (the CLI sets it); None: no Host check
    bind_port: int | None = None
    allowed_hosts: tuple[str, ...] = ()  # extra Host names accepted on a loopback bind
    max_upload_bytes: int = 64 << 20
    max_body_bytes: int = 1 << 20  # every JSON body
    max_prompt_chars: int = 32768  # prompt / all message contents, before tokenising
    max_steering_entries: int = 8
    max_queued: int = 256  # generation requests in flight (running + waiting); more -> 429
    retry_after_s: int = 1

    @property
    def plan_management(self) -> bool:
        return self.admin_key is not None or self.allow_plan_uploads

    def check(self) -> None:
        from ..errors import SteeringError

        for name in ("max_upload_bytes", "max_body_bytes", "max_prompt_chars", "max_queued"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SteeringError(f"{name} must be a positive int, got {v!r}")
        if self.max_steering_entries < 0:
            raise SteeringError(f"max_steering_entries must be >= 0, got {self.max_steering_entries!r}")
        for name in ("api_key", "admin_key"):
            v = getattr(self, name)
            if v is not None and (not v or not v.isprintable() or v != v.strip()):
                raise SteeringError(f"{name} must be non-empty printable text without edge spaces")


@dataclass
class Admission:
    """Live state the middleware shares with the CLI (SIGTERM) and /metrics."""

    in_flight: int = 0  # admitted generation requests whose response has not ended
    draining: bool = False  # set on SIGTERM: new generation requests get 503 + Retry-After


class Refused(Exception):
    """A request the middleware answers itself (`param`: the request field at fault, if one)."""

    def __init__(self, status: int, message: str, code: str, headers: dict | None = None, param=None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}
        self.param = param


class _BodyTooLarge(Refused):
    pass


ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error"}


def error_json(status: int, message: str, code: str, param: str | None = None) -> dict:
    """OpenAI's error object; `param` (the request field at fault) is always present, null
    when no one field is."""
    kind = ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


async def send_error(send, exc: Refused) -> None:
    body = json.dumps(error_json(exc.status, exc.message, exc.code, exc.param)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), str(v).encode()) for k, v in exc.headers.items()]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def is_plan_management(method: str, path: str) -> bool:
    return (method == "POST" and path == PLANS_PATH) or (
        method == "DELETE" and path.startswith(PLANS_PATH + "/")
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _split_host(value: str) -> tuple[str, int | None]:
    """'name:port' / '[v6]:port' / 'name' -> (lower-case name, port or None); raises ValueError."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.index("]")
        name, rest = value[: end + 1], value[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(value)
        port = rest[1:] or None
    else:
        name, _, port = value.partition(":")
        port = port or None
    if not name:
        raise ValueError(value)
    return name, (int(port) if port is not None else None)


def _bearer(headers: dict) -> str | None:
    raw = headers.get(b"authorization")
    if raw is None:
        return None
    scheme, _, token = raw.decode("latin-1").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _same(token: str | None, key: str | None) -> bool:
    """Constant-time comparison (hmac.compare_digest); False when either side is missing."""
    if token is None or key is None:
        return False
    return hmac.compare_digest(token.encode("utf-8", "replace"), key.encode("utf-8"))


def check_admin(token: str | None, admin_key: str | None, allow_uploads: bool) -> None:
    """Plan upload / delete: the admin key when one is set, else only with allow_uploads."""
    if admin_key is not None:
        if not _same(token, admin_key):
            raise Refused(403, "plan upload and delete need the admin key", "admin_key_required")
    elif not allow_uploads:
        raise Refused(
            403,
            "plan management is off on this server (start it with --admin-key, or "
            "--allow-plan-uploads for every caller)",
            "plan_management_disabled",
        )


def admin_check(admin_key: str | None, allow_uploads: bool = False):
    """`authorize(request)` for routes.plans.plans_router on another server: raises Refused
    (403) unless the request's `Authorization: Bearer` token is `admin_key` (compared in
    constant time); with no admin key, every caller passes only if `allow_uploads`."""

    def authorize(request) -> None:
        raw = request.headers.get("authorization")
        token = _bearer({b"authorization": raw.encode("latin-1")} if raw is not None else {})
        check_admin(token, admin_key, allow_uploads)

    return authorize


class SecurityMiddleware:
    """Pure ASGI middleware (streamed bodies are counted chunk by chunk, never buffered whole).

    Generation bodies (<= max_body_bytes) are parsed once here for the field limits and handed
    to the app unchanged; `scope["steerfast"]` gets the request's steering names (and prompt,
    for the access log) when an outer middleware put a dict there.
    """

    def __init__(self, app, config: SecurityConfig, admission: Admission | None = None):
        self.app, self.config = app, config
        self.admission = admission if admission is not None else Admission()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        admitted = False
        try:
            receive = await self._check(scope, receive)
            if scope["path"] in GENERATION_PATHS and scope["method"] == "POST":
                self._admit()
                admitted = True
                self.admission.in_flight += 1
            await self.app(scope, receive, tracked_send)
        except Refused as exc:
            if not started:
                await send_error(send, exc)
        finally:
            if admitted:
                self.admission.in_flight -= 1

    def _admit(self) -> None:
        c, a = self.config, self.admission
        after = {"Retry-After": c.retry_after_s}
        if a.draining:
            raise Refused(503, "the server is shutting down; retry on another instance", "draining", after)
        if a.in_flight >= c.max_queued:
            raise Refused(
                429,
                f"{a.in_flight} generation requests are in flight, the server's limit "
                f"(--max-queued) is {c.max_queued}; retry later",
                "too_many_requests",
                after,
            )

    async def _check(self, scope, receive):
        c = self.config
        headers = dict(scope["headers"])  # last one wins; names are lower-case bytes in ASGI
        path, method = scope["path"], scope["method"]
        self._check_host(headers)
        token = _bearer(headers)
        if (
            c.api_key is not None
            and path not in OPEN_PATHS
            and not (_same(token, c.api_key) or _same(token, c.admin_key))
        ):
            raise Refused(
                401,
                "missing or wrong API key: send 'Authorization: Bearer <key>'"
                if token
                else "this server needs an API key: send 'Authorization: Bearer <key>'",
                "invalid_api_key",
                {"WWW-Authenticate": "Bearer"},
            )
        if is_plan_management(method, path):
            check_admin(token, c.admin_key, c.allow_plan_uploads)
        if method not in ("POST", "PUT", "PATCH"):
            return receive
        upload = path == PLANS_PATH
        want = "application/octet-stream" if upload else "application/json"
        got = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
        if got != want:
            raise Refused(
                415,
                f"{method} {path} needs 'Content-Type: {want}', got {got or 'none'!r}",
                "unsupported_media_type",
            )
        limit = c.max_upload_bytes if upload else c.max_body_bytes
        what = "plan upload" if upload else "JSON body"
        flag = "--max-upload-bytes" if upload else "--max-body-bytes"
        length = headers.get(b"content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                raise Refused(400, f"bad Content-Length {length!r}", "invalid_request") from None
            if n > limit:
                raise Refused(
                    413, f"{what} of {n} bytes; this server's limit ({flag}) is {limit}", "too_large"
                )
        receive = _counted(receive, limit, what, flag)
        if path in GENERATION_PATHS:
            receive = await self._check_fields(scope, path, receive)
        return receive

    def _check_host(self, headers: dict) -> None:
        c = self.config
        if c.bind_host is None or not _is_loopback(c.bind_host):
            return
        raw = headers.get(b"host")
        if raw is None:
            raise Refused(400, "a Host header is required", "invalid_host")
        try:
            name, port = _split_host(raw.decode("latin-1"))
        except ValueError:
            raise Refused(400, f"malformed Host header {raw!r}", "invalid_host") from None
        names = {
            "localhost",
            "127.0.0.1",
            "[::1]",
            c.bind_host.lower(),
            *(h.lower() for h in c.allowed_hosts),
        }
        if name not in names or port not in (None, c.bind_port):
            # a page on another origin reaching this loopback server through DNS rebinding
            raise Refused(
                421,
                f"Host {raw.decode('latin-1')!r} is not this server (bound to {c.bind_host}:{c.bind_port});"
                f" add it with --allowed-host",
                "invalid_host",
            )

    async def _check_fields(self, scope, path, receive):
        c = self.config
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        data = b"".join(chunks)
        try:
            body = parse_body(data)
        except FieldError:
            body = None  # the app answers a malformed body itself (the same 400)
        if isinstance(body, dict):
            n = prompt_chars(path, body)
            if n > c.max_prompt_chars:
                raise Refused(
                    400,
                    f"the prompt has {n} characters; this server's limit (--max-prompt-chars) is "
                    f"{c.max_prompt_chars}",
                    "prompt_too_long",
                    param="prompt" if path == "/v1/completions" else "messages",
                )
            steer = body.get("steering")
            if isinstance(steer, list) and len(steer) > c.max_steering_entries:
                raise Refused(
                    400,
                    f"steering has {len(steer)} entries; this server's limit "
                    f"(--max-steering-entries) is {c.max_steering_entries}",
                    "too_many_steering_entries",
                    param="steering",
                )
            info = scope.get("steerfast")
            if isinstance(info, dict):
                info["steering"] = steering_names(body)
                info["prompt"] = body.get("prompt", body.get("messages"))
                info["stream"] = bool(body.get("stream"))
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()  # after the body: the client's disconnect

        return replay


def _counted(receive, limit: int, what: str, flag: str):
    seen = 0

    async def counted():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _BodyTooLarge(
                    413, f"{what} over {limit} bytes, this server's limit ({flag})", "too_large"
                )
        return message

    return counted


__all__ = [
    "Admission",
    "SecurityConfig",
    "SecurityMiddleware",
    "Refused",
    "error_json",
    "is_plan_management",
    "admin_check",
]
