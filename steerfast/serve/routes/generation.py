"""`POST /v1/completions` and `POST /v1/chat/completions`: validated requests -> engine requests.

Every request body is validated against the endpoint's allow-list (serve/openai_fields.py):
a field is honoured or refused with a 400 naming it. A failure after a stream has started is
an SSE `error` event followed by `[DONE]`. Text is decoded incrementally (serve/streaming.py);
stop strings cut it and cancel the engine request. A client that goes away cancels its
engine requests (polled every DISCONNECT_POLL_S while a non-streamed request runs).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from ...errors import SteeringError
from ..choices import ChoiceState, logprobs_json
from ..http_errors import HTTPError, as_http, error_body, error_response
from ..json_body import parse_body
from ..log_safe import printable
from ..monitors import chunk_readings, request_monitors
from ..openai_fields import OpenAIRequest, max_new_tokens, parse_chat, parse_completion
from ..steer_entry import SteerEntry
from ..streaming import DONE, TokenText, sse

log = logging.getLogger("steerfast.serve")
DISCONNECT_POLL_S = 0.25


def chat_prompt(tokenizer, messages) -> str:
    """The model's chat template, ready for the assistant's turn (tokenised like a completion)."""
    return tokenizer.apply_chat_template(
        [{"role": m["role"], "content": m["content"]} for m in messages],
        tokenize=False,
        add_generation_prompt=True,
    )


async def read_json(request: Request) -> dict:
    return parse_body(await request.body())  # 400 for malformed, too deep, lone surrogates


def steering_entries(raw) -> list[SteerEntry]:
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


@dataclass
class Job:
    """One accepted request: what it asked, its prompt, the response head and its choices."""

    req: OpenAIRequest
    prompt: str
    ids: list[int]
    head: dict
    states: list[ChoiceState]
    gens: list
    monitors: list[str] = field(default_factory=list)  # names this request asked for

    @property
    def obj(self) -> str:
        if self.req.stream:
            return "chat.completion.chunk" if self.req.chat else "text_completion"
        return "chat.completion" if self.req.chat else "text_completion"

    def usage(self) -> dict:
        done = sum(s.n_tokens for s in self.states)
        return {
            "prompt_tokens": len(self.ids),
            "completion_tokens": done,
            "total_tokens": len(self.ids) + done,
        }


class Generation:
    """The two generation endpoints over one engine."""

    def __init__(self, engine, model_name: str, served_names=()):
        self.engine, self.model_name = engine, model_name
        self.names = {model_name, *served_names}
        self.tok = engine.tokenizer
        self.token_text = TokenText(self.tok)
        ctx = getattr(engine.model.config, "max_position_embeddings", None)
        kv = getattr(engine, "kv_capacity", None)
        self.context = min(c for c in (ctx, kv) if c) if (ctx or kv) else None

    async def prepare(self, body: dict, chat: bool):
        req = parse_chat(body) if chat else parse_completion(body)
        if req.model is not None and req.model not in self.names:
            raise HTTPError(
                404,
                f"the model {req.model!r} does not exist; this server serves {sorted(self.names)}",
                "model_not_found",
                "model",
            )
        entries = steering_entries(req.steering)
        if chat:
            try:
                prompt = chat_prompt(self.tok, req.messages)
            except SteeringError:
                raise
            except Exception as exc:  # the model's template refused the conversation
                raise HTTPError(
                    400, f"the chat template refused the messages: {exc}", "invalid_messages", "messages"
                ) from exc
        else:
            prompt = req.prompt
        # a long prompt: off the event loop; a rendered chat template has its special tokens
        ids = await asyncio.to_thread(self.engine.encode, prompt, not chat)
        max_new = max_new_tokens(req.max_tokens, len(ids), self.engine.max_new_tokens, self.context)
        self.engine.resolve(entries)  # unknown plans fail here, before any slot is taken
        req.monitors = request_monitors(self.engine, req.monitors)
        return req, prompt, ids, entries, max_new

    async def run(self, request: Request, chat: bool):
        body = await read_json(request)
        req, prompt, ids, entries, max_new = await self.prepare(body, chat)
        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
        if req.user is not None:
            log.info("%s user=%s", rid, printable(req.user))  # the client wrote it: one line
        head = {"id": rid, "created": int(time.time()), "model": req.model or self.model_name}
        states = [ChoiceState(i, self.tok, self.token_text, req) for i in range(req.n)]
        gens = [
            self.engine.generate(ids, entries, req.params(max_new, i), stream=req.stream, **_asked(req))
            for i in range(req.n)
        ]
        job = Job(req, prompt, ids, head, states, gens, req.monitors)
        if req.stream:
            return await self.stream(job)
        return await self.complete(request, job)

    async def complete(self, request: Request, job: Job) -> JSONResponse:
        work = asyncio.ensure_future(asyncio.gather(*(_collect(s, g) for s, g in zip(job.states, job.gens))))
        try:
            while not work.done():
                await asyncio.wait([work], timeout=DISCONNECT_POLL_S)
                if not work.done() and await request.is_disconnected():
                    work.cancel()  # the client went away: cancel its engine requests
                    await asyncio.gather(work, return_exceptions=True)
                    log.info("%s: client disconnected; cancelled", job.head["id"])
                    raise HTTPError(499, "the client disconnected", "client_disconnected")
            await work
        except BaseException:
            work.cancel()
            raise
        req = job.req
        choices = []
        for s in job.states:
            c = {"index": s.index, "finish_reason": s.finish_reason, "token_ids": s.token_ids}
            lp = None
            if req.logprobs is not None:
                lp = logprobs_json(s.lp_entries, req.chat, req.logprobs, len(job.prompt) if req.echo else 0)
            if req.chat:
                c["message"] = {"role": "assistant", "content": s.text}
            else:
                c["text"] = (job.prompt if req.echo else "") + s.text
            c["logprobs"] = lp
            if job.monitors:
                c["monitors"] = chunk_readings(s.snapshot, job.monitors, 0, s.n_tokens)
            choices.append(c)
        return JSONResponse({**job.head, "object": job.obj, "choices": choices, "usage": job.usage()})

    async def stream(self, job: Job) -> StreamingResponse:
        # the first output of every choice decides whether the request could start (4xx / 5xx status)
        firsts = await asyncio.gather(*(g.__anext__() for g in job.gens), return_exceptions=True)
        failed = [f for f in firsts if isinstance(f, BaseException)]
        if failed:
            for g in job.gens:
                await g.aclose()
            raise failed[0]
        return StreamingResponse(_events(job, firsts), media_type="text/event-stream")


def _asked(req) -> dict:
    return {"monitors": req.monitors} if req.monitors else {}


async def _collect(state: ChoiceState, gen) -> None:
    try:
        async for g in gen:
            state.update(g)
            state.snapshot = g  # the last one: its monitor readings (serve/monitors.py)
            if state.done:
                break
    finally:
        await gen.aclose()  # a stop string before the end cancels the engine request


async def _pump(queue: asyncio.Queue, i: int, gen, first) -> None:
    try:
        queue.put_nowait((i, first))
        if not first.finished:
            async for g in gen:
                queue.put_nowait((i, g))
    except Exception as exc:
        queue.put_nowait((i, exc))
    finally:
        await gen.aclose()


def _chunk(job: Job, state: ChoiceState, text, ids_, entries, reason, readings=None) -> bytes:
    req = job.req
    c = {"index": state.index, "finish_reason": reason, "token_ids": ids_}
    if readings is not None:
        c["monitors"] = readings
    lp = logprobs_json(entries, req.chat, req.logprobs) if req.logprobs is not None and entries else None
    if req.chat:
        c["delta"] = {"content": text} if text or reason is None else {}
    else:
        c["text"] = text
    c["logprobs"] = lp
    return sse({**job.head, "object": job.obj, "choices": [c]})


def _opening(job: Job, state: ChoiceState) -> bytes | None:
    """The first chunk of a choice: the assistant role (chat), the echoed prompt (completions)."""
    if job.req.chat:
        role = {"index": state.index, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        return sse({**job.head, "object": job.obj, "choices": [{**role, "logprobs": None}]})
    if job.req.echo:
        c = {
            "index": state.index,
            "text": job.prompt,
            "logprobs": None,
            "finish_reason": None,
            "token_ids": [],
        }
        return sse({**job.head, "object": job.obj, "choices": [c]})
    return None


async def _events(job: Job, firsts):
    queue: asyncio.Queue = asyncio.Queue()
    tasks = [asyncio.ensure_future(_pump(queue, i, g, f)) for i, (g, f) in enumerate(zip(job.gens, firsts))]
    try:
        for s in job.states:
            opening = _opening(job, s)
            if opening is not None:
                yield opening
        left = len(job.states)
        while left:
            i, item = await queue.get()
            s = job.states[i]
            if s.done:
                continue
            if isinstance(item, BaseException):
                e = as_http(item)
                log.error("%s: failed mid-stream: %s", job.head["id"], e.message)
                yield sse(error_body(e.status, e.message, e.code, e.param))
                yield DONE
                return
            start = s.n_tokens
            text, ids_, entries = s.update(item)
            readings = chunk_readings(item, job.monitors, start, s.n_tokens) if job.monitors else None
            if text or ids_ or s.done:
                yield _chunk(job, s, text, ids_, entries, s.finish_reason if s.done else None, readings)
            if s.done:
                left -= 1
                tasks[i].cancel()  # stopped by a stop string: cancel the engine request
        if job.req.include_usage:
            yield sse({**job.head, "object": job.obj, "choices": [], "usage": job.usage()})
        yield DONE
    finally:  # also when the client went away: cancel whatever still runs
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def generation_router(engine, model_name: str, served_names=()) -> APIRouter:
    """The completions and chat completions routes over `engine`."""
    gen = Generation(engine, model_name, served_names)
    router = APIRouter()

    async def guarded(request: Request, chat: bool):
        try:
            return await gen.run(request, chat)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return error_response(exc)

    @router.post("/v1/completions")
    async def completions(request: Request):
        return await guarded(request, chat=False)

    @router.post("/v1/chat/completions")
    async def chat(request: Request):
        return await guarded(request, chat=True)

    return router


__all__ = ["generation_router", "chat_prompt", "Generation", "DISCONNECT_POLL_S"]
