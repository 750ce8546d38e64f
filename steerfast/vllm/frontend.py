"""Frontend side: every request's `steering` is checked against the plans and the engine's
layout before it is queued (a bad one raises, which the OpenAI server answers with 400),
made canonical, and its KV cache is salted with its configuration.

A request's `monitors` (names) are checked against the engine's monitors and carried to
the workers with the request's id, the key its readings are kept under (monitoring.py).

Sources of a request's steering and monitors: `SamplingParams.extra_args["steering"]` (offline), the same
as a JSON string via `vllm_xargs`, or the top-level `steering` field `steerfast serve` takes
(moved into extra_args by the patched `to_sampling_params`)."""

from __future__ import annotations

import functools
import json
import threading

from ..errors import SteeringError
from .config import plugin_config
from .monitor_taps import KEY as TAPS_KEY
from .patching import patch_once
from .spec import KEY, cache_salt
from .state import EngineState

MONITORS = "monitors"  # a request's monitor names (extra_args, vllm_xargs or a top-level field)
_STATES: dict[tuple, EngineState | None] = {}
_LOCK = threading.Lock()


class NotConfigured(SteeringError):
    pass


def engine_state(vllm_config) -> EngineState | None:
    """This process's EngineState for `vllm_config` (None: steerfast is not configured); one
    per model and configuration, shared by the request path and the plan routes."""
    key = (vllm_config.model_config.model, json.dumps(vllm_config.additional_config or {}, sort_keys=True))
    with _LOCK:
        if key not in _STATES:
            cfg = plugin_config(vllm_config.additional_config)
            tp = vllm_config.parallel_config.tensor_parallel_size
            _STATES[key] = None if cfg is None else EngineState(cfg, vllm_config.model_config.hf_config, tp)
        return _STATES[key]


def steer_request(vllm_config, req):
    """The EngineCoreRequest with its steering canonical and its cache salted, and its
    monitors checked and keyed by its request id (or refused)."""
    sp = req.sampling_params
    extra = (getattr(sp, "extra_args", None) or {}) if sp is not None else {}
    raw, asked = extra.get(KEY), extra.get(MONITORS)
    if raw is None and asked is None:
        return req
    state = engine_state(vllm_config)
    if state is None:
        raise NotConfigured(
            f"this request asks for {KEY if raw is not None else MONITORS}, but the steerfast plugin "
            'is not configured on this engine: start vLLM with additional_config={"steerfast": {...}}'
        )
    if asked is not None:
        names = state.monitor_names(asked)
        if getattr(sp, "n", 1) != 1:
            raise SteeringError("monitors are read for n = 1 only (each choice is its own request)")
        rest = {k: v for k, v in sp.extra_args.items() if k != MONITORS}
        if names:
            rest[TAPS_KEY] = {"id": req.request_id, "names": names}
        sp.extra_args = rest or None
    if raw is None:
        return req
    spec = state.canonical(raw)
    rest = {k: v for k, v in sp.extra_args.items() if k != KEY}
    if spec is None:
        sp.extra_args = rest or None
        return req
    sp.extra_args = {**rest, KEY: spec}
    if spec["whole_prompt"]:  # a cached prefix would never pass the gate's read hook
        sp.skip_reading_prefix_cache = True
    req.cache_salt = cache_salt(spec, len(req.prompt_token_ids or ()), req.cache_salt)
    return req


def _client_error(exc: SteeringError):
    """vLLM's own request-validation error: its server answers 400 (a plain ValueError raised
    in the engine client would be reported as a 500) and LLM.generate raises it."""
    from vllm.exceptions import VLLMValidationError

    return VLLMValidationError(str(exc), parameter=KEY)


def _wrap_process_inputs(orig):
    @functools.wraps(orig)
    def process_inputs(self, *args, **kwargs):
        req = orig(self, *args, **kwargs)
        try:
            return steer_request(self.vllm_config, req)
        except SteeringError as exc:
            raise _client_error(exc) from exc

    return process_inputs


def _wrap_to_sampling_params(orig):
    @functools.wraps(orig)
    def to_sampling_params(self, *args, **kwargs):
        sp = orig(self, *args, **kwargs)
        extra = getattr(self, "model_extra", None) or {}
        for field in (KEY, MONITORS):
            if field in extra and extra[field] is not None:
                if sp.extra_args and field in sp.extra_args:
                    raise _client_error(
                        SteeringError(f"{field} is given both as a field and in vllm_xargs; give it once")
                    )
                sp.extra_args = {**(sp.extra_args or {}), field: extra[field]}
        return sp

    return to_sampling_params


def install() -> None:
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.entrypoints.openai.completion.protocol import CompletionRequest
    from vllm.v1.engine.input_processor import InputProcessor

    patch_once(InputProcessor, "process_inputs", _wrap_process_inputs)
    patch_once(CompletionRequest, "to_sampling_params", _wrap_to_sampling_params)
    patch_once(ChatCompletionRequest, "to_sampling_params", _wrap_to_sampling_params)
