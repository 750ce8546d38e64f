"""One access-log line and the metrics for every request (the outermost ASGI middleware).

The line (logger `steerfast.access`, level INFO) holds the client, method, path, status,
latency, prompt / completion tokens, whether it streamed, the steering plans it named and,
for an error, its code; never the prompt unless the server runs with `--log-prompts`. Tokens
come from the response's `usage` (every non-streamed completion has one; a stream has it in
its last chunk with `stream_options.include_usage`, otherwise its `token_ids` are counted).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

from .log_safe import printable
from .security import GENERATION_PATHS

log = logging.getLogger("steerfast.access")
SNIFF_LIMIT = 4 << 20  # a JSON response body read for its usage; larger ones are not parsed


@dataclass
class RequestRecord:
    client: str
    method: str
    path: str
    status: int = 0
    seconds: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    stream: bool = False
    steering: list[str] = field(default_factory=list)
    prompt: object = None
    error: str | None = None
    first_token_s: float | None = None
    token_gaps: list[float] = field(default_factory=list)

    def line(self, with_prompt: bool = False) -> str:
        def n(v):
            return "-" if v is None else str(v)

        parts = [
            self.client,
            f'"{self.method} {self.path}"',
            str(self.status),
            f"{self.seconds * 1000:.1f}ms",
            f"prompt_tokens={n(self.prompt_tokens)}",
            f"completion_tokens={n(self.completion_tokens)}",
            f"stream={'yes' if self.stream else 'no'}",
            f"steering={','.join(self.steering) or '-'}",
        ]
        if self.first_token_s is not None:
            parts.append(f"ttft={self.first_token_s * 1000:.1f}ms")
        if self.error:
            parts.append(f"error={self.error}")
        if with_prompt and self.prompt is not None:
            parts.append("prompt=" + json.dumps(self.prompt, ensure_ascii=False))
        return printable(" ".join(parts))  # a path's %0A or %00 must not break the line


class ObserveMiddleware:
    def __init__(self, app, metrics=None, log_prompts: bool = False):
        self.app, self.metrics, self.log_prompts = app, metrics, log_prompts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        client = scope.get("client")
        rec = RequestRecord(f"{client[0]}:{client[1]}" if client else "-", scope["method"], scope["path"])
        info: dict = {}
        scope["steerfast"] = info  # the security middleware fills in steering / prompt
        sniff = _Sniffer(rec, t0, scope["path"] in GENERATION_PATHS)
        if self.metrics is not None:
            sniff.on_tokens = self.metrics.streamed_tokens

        async def observed_send(message):
            if message["type"] == "http.response.start":
                rec.status = message["status"]
                sniff.start(dict(message.get("headers") or []))
            elif message["type"] == "http.response.body":
                sniff.body(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except BaseException:
            if not rec.status:
                rec.status = 500
            raise
        finally:
            sniff.finish()
            rec.seconds = time.perf_counter() - t0
            rec.steering = info.get("steering", [])
            rec.stream = rec.stream or bool(info.get("stream"))
            rec.prompt = info.get("prompt")
            if self.metrics is not None:
                self.metrics.observe(rec)
            log.info(rec.line(self.log_prompts))


class _Sniffer:
    """Reads usage, token counts, timings and error codes off the response as it passes."""

    def __init__(self, rec: RequestRecord, t0: float, generation: bool):
        self.rec, self.t0, self.generation = rec, t0, generation
        self.kind = None
        self.buf = bytearray()
        self.last_token_t = None
        self.counted = 0
        self.on_tokens = None  # called with each SSE event's token count as it passes

    def start(self, headers: dict) -> None:
        ctype = headers.get(b"content-type", b"").decode("latin-1")
        self.kind = "sse" if "text/event-stream" in ctype else "json" if "json" in ctype else None
        self.rec.stream = self.kind == "sse"

    def body(self, chunk: bytes) -> None:
        if self.kind == "json" and (self.generation or self.rec.status >= 400):
            if len(self.buf) + len(chunk) <= SNIFF_LIMIT:
                self.buf += chunk
        elif self.kind == "sse":
            self.buf += chunk
            *events, rest = bytes(self.buf).split(b"\n\n")
            self.buf = bytearray(rest)
            for ev in events:
                self._event(ev)

    def _event(self, ev: bytes) -> None:
        for line in ev.split(b"\n"):
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                continue
            try:
                obj = json.loads(data)
            except ValueError:
                continue
            if not isinstance(obj, dict):
                continue
            self._usage(obj)
            if isinstance(obj.get("error"), dict):
                self.rec.error = str(obj["error"].get("code"))
            n, content = 0, False
            for ch in obj.get("choices") or []:
                if not isinstance(ch, dict):
                    continue
                ids = ch.get("token_ids")
                n += len(ids) if isinstance(ids, list) else 0
                delta = ch.get("delta") or {}
                content |= bool(ch.get("text") or (isinstance(delta, dict) and delta.get("content")))
            self.counted += n
            if n and self.on_tokens is not None:
                self.on_tokens(n)
            if n or content:
                now = time.perf_counter()
                if self.last_token_t is None:
                    self.rec.first_token_s = now - self.t0
                else:
                    self.rec.token_gaps.append(now - self.last_token_t)
                self.last_token_t = now

    def _usage(self, obj: dict) -> None:
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self.rec.prompt_tokens = usage.get("prompt_tokens", self.rec.prompt_tokens)
            self.rec.completion_tokens = usage.get("completion_tokens", self.rec.completion_tokens)

    def finish(self) -> None:
        if self.kind == "json" and self.buf:
            try:
                obj = json.loads(bytes(self.buf))
            except ValueError:
                return
            if isinstance(obj, dict):
                self._usage(obj)
                if isinstance(obj.get("error"), dict):
                    self.rec.error = str(obj["error"].get("code"))
        elif self.kind == "sse":
            if self.buf.strip():
                self._event(bytes(self.buf))
            if self.rec.completion_tokens is None and self.counted:
                self.rec.completion_tokens = self.counted


__all__ = ["ObserveMiddleware", "RequestRecord"]
