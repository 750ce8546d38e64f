"""Monitor readings in vLLM's OpenAI server, as `steerfast serve` answers them:
`choices[i].monitors = {name: [one float per generated token]}` in a full response, and in
each streamed chunk the readings of the tokens it carries.

`AsyncLLM.generate` is wrapped: for a request that asked for monitors (frontend.py moved
its `monitors` field into extra_args) each RequestOutput it yields gets `steerfast_monitors`,
taken from the workers by collective_rpc: all readings on the final output of a full
(FINAL_ONLY) request, the readings of the output's new tokens on a streamed (DELTA) one; one
RPC answers every request waiting for readings when it starts (`_Fetcher`).
The response builders copy them into their choices: the completion and chat full responses
directly, the streams by passing each output's readings to the next chunk of its choice.
Every reading handed over is observed in the `steerfast_monitor_reading{monitor}` histogram
on vLLM's /metrics (steerfast serve's metric, same buckets).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json

from .monitoring import RPC, shape
from .patching import patch_once

ATTR = "steerfast_monitors"
_HISTOGRAM = []  # created in the API server process at its first monitored request


def _observe(got: dict[str, list[float]]) -> None:
    if not _HISTOGRAM:
        from ..serve.monitors import reading_histogram

        _HISTOGRAM.append(reading_histogram())  # vLLM's /metrics serves the default registry
    for name, values in got.items():
        child = _HISTOGRAM[0].labels(monitor=name)
        for v in values:
            child.observe(v)


def _asks(sp) -> bool:
    return bool((getattr(sp, "extra_args", None) or {}).get("monitors"))


class _Fetcher:
    """The readings the requests of one engine ask for, one collective_rpc for all who wait.

    A streamed request wants its new tokens' readings with every output, so asking one by one
    would cost an RPC per request per step; every request waiting when an RPC starts is
    answered by it instead (one RPC for the ongoing, one for the finished, per step)."""

    def __init__(self, engine):
        self.engine = engine
        self.waiting: dict[str, tuple[bool, int, asyncio.Future]] = {}
        self.task: asyncio.Task | None = None

    async def get(self, key: str, final: bool, start: int) -> dict | None:
        """{"names", "rows"} of `key` from token `start` (None: nothing kept for it)."""
        fut = asyncio.get_running_loop().create_future()
        self.waiting[key] = (final, start, fut)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting, {}
            for final in (False, True):
                part = {k: v for k, v in batch.items() if v[0] == final}
                if not part:
                    continue
                try:
                    starts = [v[1] for v in part.values()]
                    got = (await self.engine.collective_rpc(RPC, args=(list(part), final, starts)))[0]
                except Exception as exc:  # each waiting request raises it
                    for _, _, fut in part.values():
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for key, (_, _, fut) in part.items():
                    if not fut.done():  # a request cancelled meanwhile (its client went away)
                        fut.set_result(got.get(key))


def _fetcher(engine) -> _Fetcher:
    got = engine.__dict__.get("_steerfast_fetcher")
    if got is None:
        got = engine.__dict__["_steerfast_fetcher"] = _Fetcher(engine)
    return got


def _wrap_generate(orig):
    @functools.wraps(orig)
    async def generate(self, prompt, sampling_params, request_id, *args, **kwargs):
        asks = _asks(sampling_params)  # read first: the frontend rewrites extra_args
        stream = orig(self, prompt, sampling_params, request_id, *args, **kwargs)
        if not asks:
            async for out in stream:
                yield out
            return
        from vllm.sampling_params import RequestOutputKind

        delta = sampling_params.output_kind == RequestOutputKind.DELTA
        seen = 0
        async for out in stream:
            n = len(out.outputs[0].token_ids) if out.outputs else 0
            total = seen + n if delta else n
            if delta or out.finished:
                start = seen if delta else 0
                got = await _fetcher(self).get(request_id, out.finished, start)
                readings = shape(got, total - start)
                _observe(readings)
                setattr(out, ATTR, readings)
            seen = total
            yield out

    return generate


def _wrap_completion_response(orig):
    @functools.wraps(orig)
    def request_output_to_completion_response(self, final_res_batch, *args, **kwargs):
        response = orig(self, final_res_batch, *args, **kwargs)
        for i, res in enumerate(final_res_batch):  # n = 1 with monitors: choice i is prompt i
            got = getattr(res, ATTR, None)
            if got is not None and i < len(response.choices):
                response.choices[i].monitors = got
        return response

    return request_output_to_completion_response


def _wrap_chat_full(orig):
    sig = inspect.signature(orig)

    @functools.wraps(orig)
    async def chat_completion_full_generator(self, *args, **kwargs):
        bound = sig.bind(self, *args, **kwargs)
        last = []

        async def results(source):
            async for res in source:
                last[:] = [res]
                yield res

        bound.arguments["result_generator"] = results(bound.arguments["result_generator"])
        response = await orig(*bound.args, **bound.kwargs)
        got = getattr(last[0], ATTR, None) if last else None
        if got is not None and getattr(response, "choices", None):
            response.choices[0].monitors = got
        return response

    return chat_completion_full_generator


def _wrap_stream(orig, indexed: bool):
    """indexed: the result generator yields (choice index, output) (completions), else
    outputs of choice 0 (chat)."""
    sig = inspect.signature(orig)

    @functools.wraps(orig)
    async def stream_generator(self, *args, **kwargs):
        bound = sig.bind(self, *args, **kwargs)
        pending: dict[int, dict[str, list]] = {}

        async def results(source):
            async for item in source:
                i, res = item if indexed else (0, item)
                got = getattr(res, ATTR, None)
                if got:
                    into = pending.setdefault(i, {})
                    for name, values in got.items():
                        into.setdefault(name, []).extend(values)
                yield item

        bound.arguments["result_generator"] = results(bound.arguments["result_generator"])
        async for chunk in orig(*bound.args, **bound.kwargs):
            yield _with_readings(chunk, pending) if pending else chunk

    return stream_generator


def _with_readings(chunk: str, pending: dict) -> str:
    if not chunk.startswith("data: ") or chunk.startswith("data: [DONE]"):
        return chunk
    try:
        body = json.loads(chunk[len("data: ") :])
    except ValueError:
        return chunk
    changed = False
    for choice in body.get("choices") or ():
        got = pending.pop(choice.get("index", 0), None)
        if got:
            choice["monitors"] = got
            changed = True
    return f"data: {json.dumps(body)}\n\n" if changed else chunk


def install() -> None:
    from vllm.entrypoints.openai.chat_completion.serving import OpenAIServingChat
    from vllm.entrypoints.openai.completion.serving import OpenAIServingCompletion
    from vllm.v1.engine.async_llm import AsyncLLM

    patch_once(AsyncLLM, "generate", _wrap_generate)
    patch_once(OpenAIServingCompletion, "request_output_to_completion_response", _wrap_completion_response)
    patch_once(OpenAIServingChat, "chat_completion_full_generator", _wrap_chat_full)
    patch_once(OpenAIServingCompletion, "completion_stream_generator", lambda f: _wrap_stream(f, True))
    patch_once(OpenAIServingChat, "chat_completion_stream_generator", lambda f: _wrap_stream(f, False))
