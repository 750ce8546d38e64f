"""The seam between the Engine and transformers' continuous batching (docs/serving.md, "Engine").

Three subclasses, each overriding methods transformers calls once per step:

- `SteeringModelRunner._forward_process_and_sample(model, batch_data, carry, prev, out)`:
  the step's requests are the IO's `requests_in_batch` (packing order). The forward runs
  inside `PackedRows.step(states)`, so the bank's row maps know which request each packed
  sequence is; the next token of each row with `has_new_token` (they come first, in order)
  is then chosen per request by serve/sampling.py (temperature / top_k / top_p / seed,
  logprobs from the raw steered logits) and written where transformers reads it (`out[0]`).
- `SteeringBatchProcessor._generation_step` / `update_batch`: an exception in a step fails
  the requests of that step only (transformers' own `handle_batch_error`: error output to
  each, blocks freed), and the loop goes on; unseamed, it kills the manager thread.
- `SteeringManager._create_batch_processor`: the processor (and its runner) it builds are
  the two classes above.

`check_internals()` verifies every transformers internal used here (the table in
serve/internals.py) and refuses, naming the installed transformers version and what is
missing, outside the range the seam was checked against (TESTED_TRANSFORMERS).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field

import torch

from ..errors import SteeringError
from ..runtime.packed import prompt_length, request_key
from . import internals
from .params import SamplingParams
from .sampling import Choice, choose

TESTED_TRANSFORMERS = internals.CHECKED_RANGE  # the releases the seam was checked against
FAULT_ENV = "STEERFAST_FAULT_PROMPT_TOKENS"  # tests: a step holding a prompt of this many tokens raises
log = logging.getLogger("steerfast.serve")


class InjectedFault(RuntimeError):
    """Raised inside a step by `Engine.inject_fault` (tests)."""


@dataclass
class Tracked:
    """One request as the seam sees it: its sampling, and what it chose per generated token."""

    params: SamplingParams
    seed: int
    choices: list[Choice] = field(default_factory=list)
    monitors: list[str] = field(default_factory=list)  # names asked for (serve/monitors.py)
    readings: list[list[float]] = field(default_factory=list)  # per generated token, per name


class StepHooks:
    """The engine's side of the seam: request table, fault injection, step counts."""

    def __init__(self, rows):
        self.rows = rows
        self.requests: dict[str, Tracked] = {}
        self.lock = threading.Lock()
        self.faults = 0  # steps still to fail
        self.fault_match: str | None = None  # only a step holding this request id (None: any)
        env = os.environ.get(FAULT_ENV)
        self.fault_prompt_tokens = int(env) if env else None
        self.steps = 0
        self.failed_steps = 0
        self.monitors = None  # serve/monitors.py ServerMonitors, when the server holds monitors

    def maybe_fail(self, states) -> None:
        with self.lock:
            ids = [request_key(fs.state.request_id) for fs in states]
            if self.faults > 0 and (self.fault_match is None or self.fault_match in ids):
                self.faults -= 1
                raise InjectedFault(f"injected step fault (requests {ids})")
        n = self.fault_prompt_tokens
        if n is not None and any(prompt_length(fs.state) == n for fs in states):
            raise InjectedFault(f"injected step fault: a prompt of {n} tokens ({FAULT_ENV})")

    def sample(self, new_states, logits: torch.Tensor) -> list[int]:
        with self.lock:
            tracked = [self.requests.get(request_key(fs.state.request_id)) for fs in new_states]
        params = [t.params if t is not None else None for t in tracked]
        seeds = [t.seed if t is not None else 0 for t in tracked]
        # tokens generated before this one, also after a re-queue folded some into the prompt
        steps = [
            len(fs.state.initial_tokens) - prompt_length(fs.state) + fs.state.generated_len()
            for fs in new_states
        ]
        choices = choose(logits, params, seeds, steps)
        if self.monitors is not None:
            self.monitors.end(new_states, tracked)
        for t, c in zip(tracked, choices):
            if t is not None:
                t.choices.append(c)
        return [c.token for c in choices]


def _cb():
    from transformers.generation.continuous_batching import continuous_api, model_runner, requests

    return continuous_api, model_runner, requests


def check_internals() -> None:
    """Every transformers internal the seam relies on (serve/internals.py's SEAM table: the
    seam, the engine and the row maps), and a version inside the range it was checked
    against, or a SteeringError naming the version and each missing name."""
    internals.check(internals.SEAM, "steerfast's serving seam")


def _classes():
    api, mr, _ = _cb()

    class SteeringModelRunner(mr.ModelRunner):
        hooks: StepHooks

        def _forward_process_and_sample(self, model, batch_data, carry_over_ids, prev_output_ids, output_ids):
            io = self.inputs_and_outputs
            states = list(io.requests_in_batch)
            hooks = self.hooks
            hooks.steps += 1
            hooks.maybe_fail(states)
            io.carry_over_tokens(batch_data["input_ids"], carry_over_ids, prev_output_ids)
            if hooks.monitors is not None:
                with hooks.lock:
                    asked = dict(hooks.requests)
                hooks.monitors.begin(states, batch_data, asked)
            with hooks.rows.step(states):
                logits = model(**batch_data).logits
            logits_indices = batch_data["logits_indices"]
            if "logits_to_keep" not in batch_data:
                logits = logits[:, logits_indices, :]
            logits = logits.float()
            if self.logit_processor.do_processing:  # none with the engine's config; kept for parity
                _, n, v = logits.shape
                ids = batch_data["input_ids"][0, logits_indices]
                logits = self.logit_processor(
                    ids, logits.view(n, v), batch_data["logits_processor_args"]
                ).view(1, n, v)
            new = [fs for fs in states if fs.has_new_token]  # their logits rows come first, in order
            if not new:
                return
            tokens = hooks.sample(new, logits[0, : len(new)])
            output_ids[0, : len(new)].copy_(torch.tensor(tokens, dtype=output_ids.dtype))

    class SteeringBatchProcessor(api.ContinuousBatchProcessor):
        _step_error: BaseException | None = None

        def _generation_step(self, model) -> None:
            self._step_error = None
            try:
                super()._generation_step(model)
            except Exception as exc:  # fail this step's requests only (update_batch below)
                self._step_error = exc
                self.model_runner.hooks.failed_steps += 1
                log.error(
                    "engine step failed; failing its requests: %s",
                    exc,
                    exc_info=not isinstance(exc, InjectedFault),
                )

        def update_batch(self) -> None:
            if self._step_error is not None:
                error, self._step_error = self._step_error, None
                self.handle_batch_error(error)
                self.inputs_and_outputs.requests_in_batch = []
                self.scheduler.block_new_requests = False
                return
            super().update_batch()

    class SteeringManager(api.ContinuousBatchingManager):
        def __init__(self, *args, hooks: StepHooks, **kwargs):
            self.hooks = hooks
            super().__init__(*args, **kwargs)

        def _create_batch_processor(self):
            bp = super()._create_batch_processor()
            if not isinstance(bp, SteeringBatchProcessor):
                if bp.use_async_batching:
                    raise SteeringError("the serving seam needs use_async_batching=False")
                bp.__class__ = SteeringBatchProcessor  # adds methods only, no state
                bp.model_runner.__class__ = SteeringModelRunner
                bp.model_runner.do_sample = bp.model_runner.return_logprobs = False
            bp.model_runner.hooks = self.hooks
            return bp

    return SteeringModelRunner, SteeringBatchProcessor, SteeringManager


_CLASSES = None


def seam_classes():
    """(SteeringModelRunner, SteeringBatchProcessor, SteeringManager), built once."""
    global _CLASSES
    if _CLASSES is None:
        check_internals()
        _CLASSES = _classes()
    return _CLASSES


def steering_manager(model, generation_config, cb_config, workload_hints, hooks: StepHooks):
    """A ContinuousBatchingManager whose steps go through the seam (not cached on the model)."""
    if getattr(model, "_cached_continuous_batching_manager", None) is not None:
        raise SteeringError("the model holds a cached continuous-batching manager; destroy it first")
    _, _, manager_cls = seam_classes()
    return manager_cls(
        model=model,
        generation_config=generation_config,
        continuous_batching_config=cb_config,
        workload_hints=workload_hints,
        hooks=hooks,
    )
