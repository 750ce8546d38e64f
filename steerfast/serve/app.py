"""OpenAI-compatible HTTP layer (FastAPI): validated requests -> engine requests + steering.

Every request body is validated against the endpoint's allow-list (serve/openai_fields.py):
a field is honoured or refused with a 400 naming it. Errors are OpenAI-shaped JSON for every
status, 500 included: {"error": {"message", "type", "param", "code"}}; a failure after a
stream has started is an SSE `error` event followed by `[DONE]`. Text is decoded
incrementally (serve/streaming.py); stop strings cut it and cancel the engine request.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from ..errors import SteeringError
from .engine import (
    Engine,
    EngineBusy,
    EngineOverloaded,
    EngineUnavailable,
    GenerationFailed,
    SteerEntry,
    UnknownPlan,
)
from .openai_fields import FieldError, OpenAIRequest, max_new_tokens, parse_chat, parse_completion
from .params import Generated
from .streaming import DONE, IncrementalDecoder, StopStrings, TokenText, sse

log = logging.getLogger("steerfast.serve")
DISCONNECT_POLL_S = 0.25


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


def _error(exc: BaseException) -> JSONResponse:
    e = as_http(exc)
    if e.status >= 500:
        log.error("request failed: %s", e.message, exc_info=e.code == "internal_error")
    return JSONResponse(
        error_body(e.status, e.message, e.code, e.param), status_code=e.status, headers=e.headers
    )


async def _json(request: Request) -> dict:
    import json

    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPError(400, f"malformed JSON body: {exc}", "malformed_json") from exc
    if not isinstance(body, dict):
        raise HTTPError(400, "the JSON body must be an object", "malformed_json")
    return body


def _steering(raw) -> list[SteerEntry]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise HTTPError(
            400, "steering must be a list of {plan, strength, positions}", "invalid_steering", "steering"
        )
    out = []
    for i, item in enumerate(raw):
        where = f"steering[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("plan"), str):
            raise HTTPError(400, f"{where} must be an object with a string 'plan'", "invalid_steering", where)
        extra = set(item) - {"plan", "strength", "positions"}
        if extra:
            raise HTTPError(400, f"{where} has unknown fields {sorted(extra)}", "invalid_steering", where)
        entry = SteerEntry(item["plan"], item.get("strength"), item.get("positions"))
        try:
            entry.check()
        except SteeringError as exc:
            raise HTTPError(400, f"{where}: {exc}", "invalid_steering", where) from exc
        out.append(entry)
    return out


class ChoiceState:
    """One choice's text, tokens and logprobs, built from the engine's snapshots as they come."""

    def __init__(self, index: int, tok, token_text: TokenText, req: OpenAIRequest):
        self.index, self.req, self.token_text = index, req, token_text
        self.decoder = IncrementalDecoder(tok)
        self.stops = StopStrings(req.stop)
        self.decoded = 0  # characters decoded so far (before stop holding): text offsets
        self.n_tokens = 0
        self.done = False
        self.finish_reason: str | None = None
        self.text_parts: list[str] = []
        self.token_ids: list[int] = []
        self.lp_entries: list[dict] = []

    def update(self, g: Generated) -> tuple[str, list[int], list[dict]]:
        """(text, token ids, logprob entries) this snapshot adds; sets done / finish_reason."""
        new = g.token_ids[self.n_tokens :]
        start = self.n_tokens
        text, ids, entries = [], [], []
        for j, t in enumerate(new):
            if self.done:
                break
            last = g.finished and j == len(new) - 1
            offset = self.decoded
            frag = self.decoder.push([t]) + (self.decoder.flush() if last else "")
            self.decoded += len(frag)
            out, hit = self.stops.feed(frag)
            if last and not hit:
                out += self.stops.flush()
            text.append(out)
            ids.append(t)
            self.n_tokens += 1
            if g.logprobs is not None:
                k = start + j
                top = g.top_logprobs[k] if g.top_logprobs is not None else []
                entries.append(self._entry(t, g.logprobs[k], top, offset))
            if hit:
                self.done, self.finish_reason = True, "stop"
        if g.finished and not self.done:
            if not new:
                text.append(self.decoder.flush())
                text[-1] = self.stops.feed(text[-1])[0] + self.stops.flush()
            self.done, self.finish_reason = True, g.finish_reason or "length"
        piece = "".join(text)
        self.text_parts.append(piece)
        self.token_ids += ids
        self.lp_entries += entries
        return piece, ids, entries

    def _entry(self, token: int, logprob: float, top, offset: int) -> dict:
        s, b = self.token_text(token)
        e = {"token": s, "logprob": logprob, "bytes": b, "offset": offset, "top": []}
        for tid, lp in top:
            ts, tb = self.token_text(tid)
            e["top"].append({"token": ts, "logprob": lp, "bytes": tb})
        return e

    @property
    def text(self) -> str:
        return "".join(self.text_parts)


def logprobs_json(entries: list[dict], chat: bool, k: int, text_base: int = 0):
    """OpenAI's shapes: chat {content: [{token, logprob, bytes, top_logprobs}]}; completions
    {tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset}."""
    if chat:
        content = [
            {"token": e["token"], "logprob": e["logprob"], "bytes": e["bytes"], "top_logprobs": e["top"]}
            for e in entries
        ]
        return {"content": content, "refusal": None}
    tops = []
    for e in entries:
        alts = e["top"] if k > 0 else [e]
        tops.append({a["token"]: a["logprob"] for a in reversed(alts)})  # best wins a name clash
    return {
        "tokens": [e["token"] for e in entries],
        "token_logprobs": [e["logprob"] for e in entries],
        "top_logprobs": tops,
        "text_offset": [text_base + e["offset"] for e in entries],
    }


def create_app(engine: Engine, model_name: str = "steerfast", ops=None, served_names=()) -> FastAPI:
    """ops: an OpsConfig (steerfast/serve/ops.py: keys, limits, --plan-dir, logs); None = defaults.
    `model` in a request must be `model_name` or one of `served_names` (or absent), else 404."""
    from .ops import install

    app = FastAPI(title="steerfast serve")
    install(app, engine, ops)  # security + access log middleware, plan routes, /metrics
    tok = engine.tokenizer
    token_text = TokenText(tok)
    names = {model_name, *served_names}
    ctx = getattr(engine.model.config, "max_position_embeddings", None)
    kv = getattr(engine, "kv_capacity", None)
    context = min(c for c in (ctx, kv) if c) if (ctx or kv) else None

    @app.exception_handler(HTTPError)
    async def _http_error(request, exc: HTTPError):
        return _error(exc)

    @app.exception_handler(FieldError)
    async def _field_error(request, exc: FieldError):
        return _error(exc)

    @app.exception_handler(SteeringError)
    async def _steering_error(request, exc: SteeringError):
        return _error(exc)

    @app.exception_handler(Exception)
    async def _any_error(request, exc: Exception):  # OpenAI-shaped JSON for a 500 too
        return _error(exc)

    @app.get("/health")
    async def health():
        ok, reason = engine.health()
        body = {"status": "ok" if ok else "unavailable", "model": model_name, "running": ok, "reason": reason}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/v1/models")
    async def models():
        return {
            "object": "list",
            "data": [
                {"id": n, "object": "model", "owned_by": "steerfast"} for n in [model_name, *served_names]
            ],
        }

    async def _prepare(body: dict, chat: bool):
        req = parse_chat(body) if chat else parse_completion(body)
        if req.model is not None and req.model not in names:
            raise HTTPError(
                404,
                f"the model {req.model!r} does not exist; this server serves {sorted(names)}",
                "model_not_found",
                "model",
            )
        entries = _steering(req.steering)
        if chat:
            try:
                prompt = chat_prompt(tok, req.messages)
            except SteeringError:
                raise
            except Exception as exc:  # the model's template refused the conversation
                raise HTTPError(
                    400, f"the chat template refused the messages: {exc}", "invalid_messages", "messages"
                ) from exc
        else:
            prompt = req.prompt
        ids = await asyncio.to_thread(engine.encode, prompt)  # a long prompt: off the event loop
        max_new = max_new_tokens(req.max_tokens, len(ids), engine.max_new_tokens, context)
        engine.resolve(entries)  # unknown plans fail here, before any slot is taken
        return req, prompt, ids, entries, max_new

    async def _run(request: Request, chat: bool):
        body = await _json(request)
        req, prompt, ids, entries, max_new = await _prepare(body, chat)
        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
        if req.user is not None:
            log.info("%s user=%s", rid, req.user)
        head = {"id": rid, "created": int(time.time()), "model": req.model or model_name}
        states = [ChoiceState(i, tok, token_text, req) for i in range(req.n)]
        gens = [
            engine.generate(ids, entries, req.params(max_new, i), stream=req.stream) for i in range(req.n)
        ]
        if req.stream:
            return await _stream(request, req, prompt, ids, head, states, gens)
        return await _complete(request, req, prompt, ids, head, states, gens)

    def _usage(ids, states) -> dict:
        done = sum(s.n_tokens for s in states)
        return {"prompt_tokens": len(ids), "completion_tokens": done, "total_tokens": len(ids) + done}

    async def _collect(state: ChoiceState, gen) -> None:
        try:
            async for g in gen:
                state.update(g)
                if state.done:
                    break
        finally:
            await gen.aclose()  # a stop string before the end cancels the engine request

    async def _complete(request, req, prompt, ids, head, states, gens):
        work = asyncio.ensure_future(asyncio.gather(*(_collect(s, g) for s, g in zip(states, gens))))
        try:
            while not work.done():
                await asyncio.wait([work], timeout=DISCONNECT_POLL_S)
                if not work.done() and await request.is_disconnected():
                    work.cancel()  # the client went away: cancel its engine requests
                    await asyncio.gather(work, return_exceptions=True)
                    log.info("%s: client disconnected; cancelled", head["id"])
                    raise HTTPError(499, "the client disconnected", "client_disconnected")
            await work
        except BaseException:
            work.cancel()
            raise
        choices = []
        for s in states:
            c = {"index": s.index, "finish_reason": s.finish_reason, "token_ids": s.token_ids}
            lp = None
            if req.logprobs is not None:
                lp = logprobs_json(s.lp_entries, req.chat, req.logprobs, len(prompt) if req.echo else 0)
            if req.chat:
                c["message"] = {"role": "assistant", "content": s.text}
                c["logprobs"] = lp
            else:
                c["text"] = (prompt if req.echo else "") + s.text
                c["logprobs"] = lp
            choices.append(c)
        obj = "chat.completion" if req.chat else "text_completion"
        return JSONResponse({**head, "object": obj, "choices": choices, "usage": _usage(ids, states)})

    async def _stream(request, req, prompt, ids, head, states, gens):
        # the first output of every choice decides whether the request could start (4xx / 5xx status)
        firsts = await asyncio.gather(*(g.__anext__() for g in gens), return_exceptions=True)
        failed = [f for f in firsts if isinstance(f, BaseException)]
        if failed:
            for g in gens:
                await g.aclose()
            raise failed[0]
        queue: asyncio.Queue = asyncio.Queue()

        async def pump(i, gen, first):
            try:
                queue.put_nowait((i, first))
                if not first.finished:
                    async for g in gen:
                        queue.put_nowait((i, g))
            except Exception as exc:
                queue.put_nowait((i, exc))
            finally:
                await gen.aclose()

        obj = "chat.completion.chunk" if req.chat else "text_completion"

        def chunk(state, text, ids_, entries, reason):
            c = {"index": state.index, "finish_reason": reason, "token_ids": ids_}
            lp = (
                logprobs_json(entries, req.chat, req.logprobs)
                if req.logprobs is not None and entries
                else None
            )
            if req.chat:
                c["delta"] = {"content": text} if text or reason is None else {}
            else:
                c["text"] = text
            c["logprobs"] = lp
            return sse({**head, "object": obj, "choices": [c]})

        async def events():
            tasks = [asyncio.ensure_future(pump(i, g, f)) for i, (g, f) in enumerate(zip(gens, firsts))]
            try:
                for s in states:
                    if req.chat:
                        role = {
                            "index": s.index,
                            "delta": {"role": "assistant", "content": ""},
                            "finish_reason": None,
                        }
                        yield sse({**head, "object": obj, "choices": [{**role, "logprobs": None}]})
                    elif req.echo:
                        yield sse(
                            {
                                **head,
                                "object": obj,
                                "choices": [
                                    {
                                        "index": s.index,
                                        "text": prompt,
                                        "logprobs": None,
                                        "finish_reason": None,
                                        "token_ids": [],
                                    }
                                ],
                            }
                        )
                left = len(states)
                while left:
                    i, item = await queue.get()
                    s = states[i]
                    if s.done:
                        continue
                    if isinstance(item, BaseException):
                        e = as_http(item)
                        log.error("%s: failed mid-stream: %s", head["id"], e.message)
                        yield sse(error_body(e.status, e.message, e.code, e.param))
                        yield DONE
                        return
                    text, ids_, entries = s.update(item)
                    if text or ids_ or s.done:
                        yield chunk(s, text, ids_, entries, s.finish_reason if s.done else None)
                    if s.done:
                        left -= 1
                        tasks[i].cancel()  # stopped by a stop string: cancel the engine request
                if req.include_usage:
                    yield sse({**head, "object": obj, "choices": [], "usage": _usage(ids, states)})
                yield DONE
            finally:  # also when the client went away: cancel whatever still runs
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

        return StreamingResponse(events(), media_type="text/event-stream")

    async def _guarded(request: Request, chat: bool):
        try:
            return await _run(request, chat)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return _error(exc)

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await _guarded(request, chat=False)

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        return await _guarded(request, chat=True)

    return app


def chat_prompt(tokenizer, messages) -> str:
    """The model's chat template, ready for the assistant's turn (tokenised like a completion)."""
    return tokenizer.apply_chat_template(
        [{"role": m["role"], "content": m["content"]} for m in messages],
        tokenize=False,
        add_generation_prompt=True,
    )
