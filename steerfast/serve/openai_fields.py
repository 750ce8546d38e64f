"""Request validation for /v1/completions and /v1/chat/completions (docs/serving.md, "Fields").

Every field of a request body is checked against an explicit allow-list per endpoint: a field
this server honours is validated and turned into `OpenAIRequest`; a known OpenAI field it
cannot honour is accepted only at its no-op value (e.g. `presence_penalty: 0`) and otherwise
refused; an unknown field is refused. Every refusal is a `FieldError` (HTTP 400) naming the
field, the value and what is allowed. Nothing is silently ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .params import MAX_TOP_LOGPROBS, SamplingParams

MAX_STOPS = 4
MAX_N = 16
SEED_RANGE = (-(1 << 63), (1 << 64) - 1)


class FieldError(Exception):
    """A 400 naming the offending field (`param`, as OpenAI's error objects do)."""

    def __init__(self, param: str, message: str, code: str = "invalid_request"):
        super().__init__(message)
        self.param, self.message, self.code = param, message, code


def _refuse(name: str, value, why: str) -> FieldError:
    return FieldError(name, f"{name}={value!r} is not supported: {why}", "unsupported_field")


def _noop_only(name: str, ok):
    """A field accepted only at values that change nothing (which is what this server does)."""

    def check(value, _body):
        if not ok(value):
            raise _refuse(name, value, NOOP_WHY[name])

    return check


NOOP_WHY = {
    "suffix": "insertion (text after the completion) is not implemented; leave it null",
    "best_of": "ranking several candidates by likelihood is not implemented; leave it null or equal to n",
    "presence_penalty": "repetition penalties are not implemented; leave it 0",
    "frequency_penalty": "repetition penalties are not implemented; leave it 0",
    "logit_bias": "per-token biases are not implemented; leave it null or {}",
    "response_format": "constrained decoding is not implemented; only {'type': 'text'} (the default)",
    "tools": "tool calling is not implemented; leave it null or []",
    "tool_choice": "tool calling is not implemented; only 'none'",
    "parallel_tool_calls": "tool calling is not implemented",
    "functions": "function calling is not implemented",
    "function_call": "function calling is not implemented; only 'none'",
    "metadata": "stored completions are not implemented",
    "store": "stored completions are not implemented; only false",
    "service_tier": "there is one tier; only 'auto' or 'default'",
    "modalities": "only text output; only ['text']",
    "audio": "audio output is not implemented",
    "prediction": "predicted outputs are not implemented",
    "reasoning_effort": "this server has no reasoning models",
    "web_search_options": "web search is not implemented",
}

_NULL = lambda v: v is None  # noqa: E731
_ZERO = lambda v: v is None or (not isinstance(v, bool) and isinstance(v, (int, float)) and v == 0)  # noqa: E731
_EMPTY = lambda v: v is None or v == {} or v == []  # noqa: E731

REFUSED_UNLESS_NOOP = {
    "presence_penalty": _noop_only("presence_penalty", _ZERO),
    "frequency_penalty": _noop_only("frequency_penalty", _ZERO),
    "logit_bias": _noop_only("logit_bias", _EMPTY),
}
COMPLETION_ONLY = {
    "suffix": _noop_only("suffix", lambda v: v is None or v == ""),
    # best_of == n (or null) is what n does: n independent samples, all returned
    "best_of": None,
}
CHAT_ONLY = {
    "response_format": _noop_only("response_format", lambda v: v is None or v == {"type": "text"}),
    "tools": _noop_only("tools", _EMPTY),
    "tool_choice": _noop_only("tool_choice", lambda v: v is None or v == "none"),
    "parallel_tool_calls": _noop_only("parallel_tool_calls", _NULL),
    "functions": _noop_only("functions", _EMPTY),
    "function_call": _noop_only("function_call", lambda v: v is None or v == "none"),
    "metadata": _noop_only("metadata", _EMPTY),
    "store": _noop_only("store", lambda v: v is None or v is False),
    "service_tier": _noop_only("service_tier", lambda v: v in (None, "auto", "default")),
    "modalities": _noop_only("modalities", lambda v: v is None or v == ["text"]),
    "audio": _noop_only("audio", _NULL),
    "prediction": _noop_only("prediction", _NULL),
    "reasoning_effort": _noop_only("reasoning_effort", _NULL),
    "web_search_options": _noop_only("web_search_options", _NULL),
}

# honoured by both endpoints (validated in parse_* below); `steering` and `top_k` are extensions
COMMON = {
    "model",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "n",
    "stop",
    "max_tokens",
    "user",
    "steering",
    "monitors",
    "logprobs",
}
COMPLETION_FIELDS = COMMON | {"prompt", "echo"} | set(REFUSED_UNLESS_NOOP) | set(COMPLETION_ONLY)
CHAT_FIELDS = (
    COMMON | {"messages", "top_logprobs", "max_completion_tokens"} | set(REFUSED_UNLESS_NOOP) | set(CHAT_ONLY)
)
CHAT_ROLES = ("system", "user", "assistant", "developer")


@dataclass
class OpenAIRequest:
    """A validated request. `sampling` has no max_new_tokens yet (it needs the prompt length)."""

    chat: bool
    model: str | None
    prompt: str | None = None  # completions
    messages: list[dict] | None = None  # chat: [{role, content}] with string content
    max_tokens: int | None = None  # None: what the context allows, capped by the server
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    n: int = 1
    stop: list[str] = field(default_factory=list)
    logprobs: int | None = None  # None: none; k: the chosen token's + the top k
    echo: bool = False
    stream: bool = False
    include_usage: bool = False
    user: str | None = None
    steering: object = None  # validated by the app (needs the engine's SteerEntry)
    monitors: object = None  # names, validated by the app (serve/monitors.py)

    def params(self, max_new_tokens: int, index: int = 0) -> SamplingParams:
        """The engine's SamplingParams of choice `index` (seed + index: n samples differ)."""
        seed = None if self.seed is None else self.seed + index
        return SamplingParams(
            max_new_tokens=max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            seed=seed,
            logprobs=self.logprobs,
        )


def _number(body, name, default, lo, hi, lo_open=False):
    v = body.get(name)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise FieldError(name, f"{name} must be a number, got {v!r}")
    if v < lo or v > hi or (lo_open and v == lo):
        span = f"({lo}, {hi}]" if lo_open else f"[{lo}, {hi}]"
        raise FieldError(name, f"{name} must be in {span}, got {v!r}")
    return float(v)


def _int(body, name, default, lo, hi=None):
    v = body.get(name)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int):
        raise FieldError(name, f"{name} must be an integer, got {v!r}")
    if v < lo or (hi is not None and v > hi):
        span = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise FieldError(name, f"{name} must be an integer {span}, got {v!r}")
    return v


def _bool(body, name, default=False):
    v = body.get(name)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise FieldError(name, f"{name} must be true or false, got {v!r}")
    return v


def _check_fields(body: dict, allowed: set[str], endpoint: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise FieldError(
            unknown[0],
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for {endpoint}; "
            f"this server accepts: {', '.join(sorted(allowed))}",
            "unknown_field",
        )
    for name, check in {**REFUSED_UNLESS_NOOP, **COMPLETION_ONLY, **CHAT_ONLY}.items():
        if name in body and check is not None:
            check(body[name], body)


def _stop(body) -> list[str]:
    v = body.get("stop")
    if v is None:
        return []
    stops = [v] if isinstance(v, str) else v
    if (
        not isinstance(stops, list)
        or not all(isinstance(s, str) and s for s in stops)
        or not 1 <= len(stops) <= MAX_STOPS
    ):
        raise FieldError(
            "stop", f"stop must be a non-empty string or a list of 1..{MAX_STOPS} of them, got {v!r}"
        )
    return list(dict.fromkeys(stops))


def _common(body: dict, req: OpenAIRequest, max_n: int) -> None:
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise FieldError("model", f"model must be a string, got {model!r}")
    req.model = model
    req.stream = _bool(body, "stream")
    opts = body.get("stream_options")
    if opts is not None:
        if not req.stream:
            raise FieldError("stream_options", "stream_options is only allowed with stream: true")
        if not isinstance(opts, dict) or set(opts) - {"include_usage"}:
            raise FieldError(
                "stream_options", f"stream_options takes only {{include_usage: bool}}, got {opts!r}"
            )
        req.include_usage = _bool(opts, "include_usage")
    req.temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
    req.top_p = _number(body, "top_p", 1.0, 0.0, 1.0, lo_open=True)
    top_k = _int(body, "top_k", 0, -1)
    req.top_k = 0 if top_k == -1 else top_k  # -1 (vLLM's "off") is 0 here
    req.seed = _int(body, "seed", None, SEED_RANGE[0], SEED_RANGE[1])
    req.n = _int(body, "n", 1, 1, max_n)
    req.stop = _stop(body)
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise FieldError("user", f"user must be a string, got {user!r}")
    req.user = user
    req.steering = body.get("steering")
    req.monitors = body.get("monitors")


def _max_tokens(body: dict, name: str) -> int | None:
    return _int(body, name, None, 1)


def parse_completion(body: dict, max_n: int = MAX_N) -> OpenAIRequest:
    _check_fields(body, COMPLETION_FIELDS, "/v1/completions")
    req = OpenAIRequest(chat=False, model=None)
    _common(body, req, max_n)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise FieldError(
            "prompt", "prompt must be one string (or a list holding one string)", "invalid_prompt"
        )
    req.prompt = prompt
    req.max_tokens = _max_tokens(body, "max_tokens")
    lp = body.get("logprobs")
    if lp is not None:
        if isinstance(lp, bool) or not isinstance(lp, int) or not 0 <= lp <= MAX_TOP_LOGPROBS:
            raise FieldError("logprobs", f"logprobs must be an integer in 0..{MAX_TOP_LOGPROBS}, got {lp!r}")
        req.logprobs = lp
    req.echo = _bool(body, "echo")
    if req.echo and req.logprobs is not None:
        raise _refuse(
            "echo", True, "the prompt's own log-probabilities are not computed; no echo with logprobs"
        )
    best_of = body.get("best_of")
    if best_of is not None and best_of != req.n:
        raise _refuse("best_of", best_of, NOOP_WHY["best_of"])
    return req


def parse_chat(body: dict, max_n: int = MAX_N) -> OpenAIRequest:
    _check_fields(body, CHAT_FIELDS, "/v1/chat/completions")
    req = OpenAIRequest(chat=True, model=None)
    _common(body, req, max_n)
    req.messages = _messages(body.get("messages"))
    a, b = _max_tokens(body, "max_tokens"), _max_tokens(body, "max_completion_tokens")
    if a is not None and b is not None and a != b:
        raise FieldError("max_completion_tokens", f"max_tokens={a} and max_completion_tokens={b} disagree")
    req.max_tokens = a if a is not None else b
    want = _bool(body, "logprobs")
    top = _int(body, "top_logprobs", None, 0, MAX_TOP_LOGPROBS)
    if top is not None and not want:
        raise FieldError("top_logprobs", "top_logprobs needs logprobs: true")
    req.logprobs = (top or 0) if want else None
    return req


def _messages(msgs) -> list[dict]:
    if not isinstance(msgs, list) or not msgs:
        raise FieldError(
            "messages", "messages must be a non-empty list of {role, content}", "invalid_messages"
        )
    out = []
    for i, m in enumerate(msgs):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise FieldError(where, f"{where} must be an object {{role, content}}", "invalid_messages")
        extra = sorted(set(m) - {"role", "content"})
        if extra:
            raise FieldError(
                f"{where}.{extra[0]}",
                f"{where} has fields this server does not support: {extra} (only role and content)",
                "invalid_messages",
            )
        role = m.get("role")
        if role not in CHAT_ROLES:
            raise FieldError(
                f"{where}.role", f"{where}.role must be one of {CHAT_ROLES}, got {role!r}", "invalid_messages"
            )
        out.append({"role": role, "content": _content(m.get("content"), where)})
    return out


def _content(content, where: str) -> str:
    """A string, or a list of {type: 'text', text} parts (joined); anything else is a 400."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, dict)
        and p.get("type") == "text"
        and isinstance(p.get("text"), str)
        and set(p) == {"type", "text"}
        for p in content
    ):
        return "".join(p["text"] for p in content)
    raise FieldError(
        f"{where}.content",
        f"{where}.content must be a string or a list of {{type: 'text', text}} parts (no images, audio or files)",
        "invalid_messages",
    )


def max_new_tokens(requested: int | None, prompt_tokens: int, server_limit: int, context: int | None) -> int:
    """What the engine generates: the request's max_tokens, or what the context leaves
    (capped by the server's --max-tokens). A request that cannot fit is a 400."""
    room = server_limit if context is None else min(server_limit, context - prompt_tokens)
    name = "max_tokens"
    if requested is None:
        if room < 1:
            raise FieldError(
                "prompt",
                f"the prompt ({prompt_tokens} tokens) leaves no room in the model's context of {context}",
            )
        return room
    if requested > server_limit:
        raise FieldError(
            name, f"max_tokens must be an int in 1..{server_limit} (--max-tokens), got {requested}"
        )
    if context is not None and prompt_tokens + requested > context:
        raise FieldError(
            name,
            f"max_tokens={requested} + the prompt's {prompt_tokens} tokens exceed the model's context of {context}",
        )
    return requested
