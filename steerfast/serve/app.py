"""OpenAI-compatible HTTP layer (FastAPI): translates requests into engine requests + steering.

Greedy decoding only (the engine's generation config); a request asking for sampling is
refused rather than silently run greedy. Errors are OpenAI-shaped JSON:
{"error": {"message", "type", "code"}} with a 4xx status.
"""

from __future__ import annotations

import json
import time
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from ..errors import SteeringError
from .engine import Engine, EngineBusy, SteerEntry, UnknownPlan


class HTTPError(Exception):
    def __init__(self, status: int, message: str, code: str):
        self.status, self.message, self.code = status, message, code


def _error(status: int, message: str, code: str) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "code": code}}, status_code=status)


def _as_http(exc: Exception) -> HTTPError:
    if isinstance(exc, UnknownPlan):
        return HTTPError(404, str(exc), "unknown_plan")
    if isinstance(exc, EngineBusy):
        return HTTPError(429, str(exc), "slots_full")
    if isinstance(exc, SteeringError):
        return HTTPError(400, str(exc), "invalid_request")
    raise exc


async def _json(request: Request) -> dict:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPError(400, f"malformed JSON body: {exc}", "malformed_json") from exc
    if not isinstance(body, dict):
        raise HTTPError(400, "the JSON body must be an object", "malformed_json")
    return body


def _steering(body: dict) -> list[SteerEntry]:
    raw = body.get("steering")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise HTTPError(400, "steering must be a list of {plan, strength, positions}", "invalid_steering")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("plan"), str):
            raise HTTPError(400, f"steering[{i}] must be an object with a string 'plan'", "invalid_steering")
        extra = set(item) - {"plan", "strength", "positions"}
        if extra:
            raise HTTPError(400, f"steering[{i}] has unknown fields {sorted(extra)}", "invalid_steering")
        entry = SteerEntry(item["plan"], item.get("strength"), item.get("positions"))
        try:
            entry.check()
        except SteeringError as exc:
            raise HTTPError(400, f"steering[{i}]: {exc}", "invalid_steering") from exc
        out.append(entry)
    return out


def _sampling(body: dict) -> None:
    t = body.get("temperature")
    if t not in (None, 0, 0.0) or body.get("n", 1) not in (None, 1):
        raise HTTPError(
            400,
            "this server decodes greedily: temperature must be 0 or absent and n 1",
            "unsupported_sampling",
        )


def create_app(engine: Engine, model_name: str = "steerfast", ops=None) -> FastAPI:
    """ops: an OpsConfig (steerfast/serve/ops.py: keys, limits, --plan-dir, logs); None = defaults."""
    from .ops import install

    app = FastAPI(title="steerfast serve")
    install(app, engine, ops)  # security + access log middleware, plan routes, /metrics
    tok = engine.tokenizer
    eos = tok.eos_token_id

    @app.exception_handler(HTTPError)
    async def _http_error(request, exc: HTTPError):
        return _error(exc.status, exc.message, exc.code)

    @app.exception_handler(SteeringError)
    async def _steering_error(request, exc: SteeringError):
        e = _as_http(exc)
        return _error(e.status, e.message, e.code)

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": model_name, "running": engine.manager.is_running()}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "steerfast"}]}

    async def _prepare(body: dict, prompt: str):
        _sampling(body)
        entries = _steering(body)
        try:
            max_new = engine.check_max_tokens(body.get("max_tokens", body.get("max_completion_tokens")))
            ids = engine.encode(prompt)
            engine.resolve(entries)  # unknown plans fail here, before any slot is taken
        except SteeringError as exc:
            e = _as_http(exc)
            raise HTTPError(e.status, e.message, e.code) from exc
        return ids, entries, max_new

    def _finish(out, max_new) -> str:
        toks = out.generated_tokens
        return "stop" if toks and toks[-1] == eos else "length"

    def _text(tokens) -> str:
        return tok.decode(tokens, skip_special_tokens=True)

    async def _run(body, prompt, chat: bool):
        ids, entries, max_new = await _prepare(body, prompt)
        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
        created = int(time.time())
        obj = "chat.completion" if chat else "text_completion"
        gen = engine.generate(ids, entries, max_new, stream=bool(body.get("stream")))
        if not body.get("stream"):
            try:
                out = None
                async for out in gen:  # noqa: B007 (the last item is the result)
                    pass
            except SteeringError as exc:
                e = _as_http(exc)
                raise HTTPError(e.status, e.message, e.code) from exc
            text = _text(out.generated_tokens)
            choice = {"index": 0, "finish_reason": _finish(out, max_new), "token_ids": out.generated_tokens}
            choice.update(
                {"message": {"role": "assistant", "content": text}}
                if chat
                else {"text": text, "logprobs": None}
            )
            usage = {
                "prompt_tokens": len(ids),
                "completion_tokens": len(out.generated_tokens),
                "total_tokens": len(ids) + len(out.generated_tokens),
            }
            return JSONResponse(
                {
                    "id": rid,
                    "object": obj,
                    "created": created,
                    "model": model_name,
                    "choices": [choice],
                    "usage": usage,
                }
            )

        # streaming: the first output decides whether the request could start (slot errors -> 4xx)
        try:
            first = await gen.__anext__()
        except SteeringError as exc:
            e = _as_http(exc)
            raise HTTPError(e.status, e.message, e.code) from exc

        async def events():
            chunk_obj = "chat.completion.chunk" if chat else "text_completion"
            if chat:
                yield _sse(
                    {
                        "id": rid,
                        "object": chunk_obj,
                        "created": created,
                        "model": model_name,
                        "choices": [
                            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                        ],
                    }
                )
            out = first
            try:
                async for piece in _pieces(out):
                    yield piece
            finally:
                await gen.aclose()  # a client that went away cancels its request
            yield "data: [DONE]\n\n"

        async def _pieces(out):
            sent_text, sent_tokens = "", 0
            chunk_obj = "chat.completion.chunk" if chat else "text_completion"
            while True:
                toks = out.generated_tokens
                text = _text(toks)
                done = out.is_finished()
                if text.endswith("\ufffd") and not done:  # wait for the rest of a UTF-8 char
                    text = sent_text
                delta, new_ids = text[len(sent_text) :], toks[sent_tokens:]
                sent_text, sent_tokens = text, len(toks)
                reason = _finish(out, max_new) if done else None
                if delta or new_ids or done:
                    choice = {"index": 0, "finish_reason": reason, "token_ids": new_ids}
                    choice.update(
                        {"delta": {"content": delta}} if chat else {"text": delta, "logprobs": None}
                    )
                    yield _sse(
                        {
                            "id": rid,
                            "object": chunk_obj,
                            "created": created,
                            "model": model_name,
                            "choices": [choice],
                        }
                    )
                if done:
                    break
                out = await gen.__anext__()

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/completions")
    async def completions(request: Request):
        body = await _json(request)
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise HTTPError(400, "prompt must be one string", "invalid_prompt")
        return await _run(body, prompt, chat=False)

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await _json(request)
        msgs = body.get("messages")
        if (
            not isinstance(msgs, list)
            or not msgs
            or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in msgs
            )
        ):
            raise HTTPError(
                400,
                "messages must be a non-empty list of {role, content} with string content",
                "invalid_messages",
            )
        prompt = chat_prompt(tok, msgs)
        return await _run(body, prompt, chat=True)

    return app


def chat_prompt(tokenizer, messages) -> str:
    """The model's chat template, ready for the assistant's turn (tokenised like a completion)."""
    return tokenizer.apply_chat_template(
        [{"role": m["role"], "content": m["content"]} for m in messages],
        tokenize=False,
        add_generation_prompt=True,
    )


def _sse(obj: dict) -> str:
    return f"data: {json.dumps(obj)}\n\n"
