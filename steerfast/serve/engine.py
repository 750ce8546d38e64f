"""Engine glue: requests with steering -> bank slots -> transformers' continuous batching.

One SteeringBank of S slots patches the model once. A *configuration* (the list of
{plan, strength, positions} a request names, resolved to one plan) occupies a slot while
requests using it are in flight; identical configurations share it. Named plans are only
held in memory (at most S of them) until a request needs one (serve/slots.py: which slot
holds which configuration). Loading a slot goes through `bank.load`, which waits for the forward in progress (the bank's lock), so a step never
sees half-written tables; requests join and leave at step boundaries (the engine's own
scheduling) and nothing is re-patched.

Requests (`generate(ids, entries, params: SamplingParams, stream)` -> `Generated` snapshots)
go through serve/seam.py: the step's requests are handed to the bank's row maps explicitly,
each request's next token is chosen by serve/sampling.py (greedy or seeded sampling, raw
logprobs), a failing step fails only its own requests, and the manager is restarted if its
loop ever dies. Every wait is bounded: a request fails once neither it nor the engine made
progress for `step_timeout_s`. A request's registrations in the engine's tables belong to its
RequestContext (serve/request_context.py), which releases them all in one place;
`registrations()` counts what every table holds.

Metrics: `metrics()` returns counts (`tokens_generated` counts tokens as they are sampled,
also those of requests later cancelled) plus `histograms` (see `LatencyStats`): time to first
token (`ttft_seconds`) and inter-token gaps (`inter_token_seconds`), each
{"buckets": [(upper bound, cumulative count)], "sum", "count"}; `stats_listener`, if set, is
called as listener(kind, seconds) with kind "ttft" or "itl" for every observation.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import AsyncIterator, Sequence

from ..errors import SteeringError
from ..plan import SteeringPlan
from ..runtime.bank import SteeringBank
from ..runtime.packed import PackedRows
from .device import on_compute_stream
from .engine_config import PAGE, cb_config, max_request_tokens, model_eos_ids  # noqa: F401 (re-exported)
from .exceptions import (  # noqa: F401 (re-exported: callers import them from here)
    EngineBusy,
    EngineOverloaded,
    EngineUnavailable,
    GenerationFailed,
    PlanExists,
    UnknownPlan,
)
from .latency import LatencyStats
from .params import Generated, SamplingParams
from .plans_api import check_name
from .prefix import PrefixKeys, prepare_manager
from .request_context import RequestContext, registrations
from .seam import InjectedFault, StepHooks, steering_manager  # noqa: F401 (re-exported)
from .slots import SlotTable
from .steer_entry import SteerEntry


class Engine:
    """Owns the model's bank and a running ContinuousBatchingManager."""

    def __init__(
        self,
        model,
        tokenizer,
        slots: int = 8,
        max_prompt_tokens: int = 1024,
        max_new_tokens: int = 256,
        kv_tokens: int = 16384,
        max_batch_tokens: int = 1024,
        prefix_cache: bool = True,
        max_waiting: int = 1024,
        step_timeout_s: float = 120.0,
    ):
        from transformers import GenerationConfig
        from transformers.generation.continuous_batching.utils import WorkloadHints

        self.model, self.tokenizer = model, tokenizer
        self.max_prompt_tokens, self.max_new_tokens = max_prompt_tokens, max_new_tokens
        self.bank = SteeringBank(model, slots=slots)
        self.rows = PackedRows(self.bank, require_seam=True)
        self.bank.packed_rows = self.rows
        self.plans: dict[str, tuple[int, SteeringPlan]] = {}  # name -> (version, plan)
        self._versions = itertools.count(1)
        self._lock = threading.Lock()
        self.stats = {
            "requests_total": 0,
            "requests_failed": 0,
            "requests_cancelled": 0,
            "prompt_tokens": 0,
            "manager_restarts": 0,
        }
        self.latency = LatencyStats()
        self.active = 0
        self.started = time.time()
        self.max_waiting, self.step_timeout_s = max_waiting, step_timeout_s
        self.slots = SlotTable(slots, self._load, step_timeout_s)
        self.accepting, self._closed = True, False
        self._inflight: dict[str, tuple] = {}  # request id -> (loop, event set to cancel it: drain)
        self.tokens_done = 0  # tokens sampled for requests that ended (RequestContext.close)
        self.gates_pending: set[str] = set()  # cancelled requests whose gate row to release again
        self.gates_lock = threading.Lock()
        self._restart_lock = threading.Lock()
        self.hooks = StepHooks(self.rows)
        self.eos_ids = model_eos_ids(model, tokenizer)
        eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else (self.eos_ids or [None])[0]
        gen = GenerationConfig(
            do_sample=False,
            max_new_tokens=max_new_tokens,
            eos_token_id=eos if eos is not None else -1,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos,
        )
        # prefix blocks are shared only within one steering configuration (serve/prefix.py)
        self.prefix_keys = PrefixKeys() if prefix_cache else None
        cb = cb_config(kv_tokens, max_batch_tokens, prefix_cache=prefix_cache)
        hints = WorkloadHints(
            max_prompt_length=max_prompt_tokens, max_generated_length=max_new_tokens, num_requests=64
        )
        self.manager = steering_manager(model, gen, cb, hints, self.hooks)
        if self.prefix_keys is not None:
            prepare_manager(self.manager, self.prefix_keys)
        else:
            self.manager.warmup()  # builds the batch processor (no capture: graphs are off)
        self.kv_capacity = max_request_tokens(self.manager)
        self.manager.start()

    # --- health and lifecycle ----------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while the manager's loop runs and the engine takes requests (/health: 200)."""
        return self.accepting and not self._closed and self.manager.is_running()

    def health(self) -> tuple[bool, str]:
        """(ok, reason): the HTTP layer answers 503 with `reason` when not ok."""
        if self._closed:
            return False, "the engine is closed"
        if not self.accepting:
            return False, "the engine is draining"
        if not self.manager.is_running():
            err = self.manager.background_thread_status.fatal_error
            return False, f"the engine's manager loop is not running ({err or 'stopped'})"
        return True, "ok"

    def _ensure_running(self) -> None:
        """Restart the manager's loop if it died (a failure outside a step, e.g. scheduling)."""
        if self._closed or not self.accepting:
            raise EngineUnavailable("the engine is not accepting requests (draining or closed)")
        if self.manager.is_running():
            return
        with self._restart_lock:
            if self.manager.is_running():
                return
            self.manager._generation_thread = None  # the dead thread (start() refuses a live one only)
            if self.manager.batch_processor is None:  # stop() dropped it: rebuild (and key) it first
                if self.prefix_keys is not None:
                    prepare_manager(self.manager, self.prefix_keys)
                else:
                    self.manager.warmup()
            self.manager.start()
            self.stats["manager_restarts"] += 1
        deadline = time.monotonic() + 5
        while not self.manager.is_running() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.manager.is_running():
            raise EngineUnavailable("the engine's manager loop could not be restarted")

    def inject_fault(self, steps: int = 1, request_id: str | None = None) -> None:
        """Tests: the next `steps` engine steps (holding `request_id`, if given) raise
        InjectedFault inside the seam, as a real failing forward would."""
        with self.hooks.lock:
            self.hooks.faults, self.hooks.fault_match = steps, request_id

    def drain(self, timeout_s: float) -> int:
        """SIGTERM: stop accepting (new requests raise EngineUnavailable), let the requests in
        flight finish for `timeout_s` seconds, then cancel the rest (they raise
        EngineUnavailable). Returns how many were cancelled. Blocking: call it from a thread
        (the CLI's signal thread), or `await asyncio.to_thread(engine.drain, t)`."""
        self.accepting = False
        deadline = time.monotonic() + max(0.0, timeout_s)
        while self._inflight and time.monotonic() < deadline:
            time.sleep(0.02)
        left = list(self._inflight.values())
        for loop, ev in left:
            loop.call_soon_threadsafe(ev.set)
        return len(left)

    # --- named plans -------------------------------------------------------------------
    def add_plan(self, name: str, plan: SteeringPlan) -> None:
        """Validate against the model, then keep it under `name`. Nothing changes on error."""
        check_name(name)
        plan.validate(self.model)
        with self._lock:
            if name in self.plans:
                raise PlanExists(f"a plan named {name!r} is already loaded; delete it first")
            if len(self.plans) >= self.bank.slots:
                raise EngineBusy(
                    f"the bank is full: {len(self.plans)} plans resident, {self.bank.slots} "
                    f"slots; delete a plan first"
                )
            self.plans[name] = (next(self._versions), plan)

    def remove_plan(self, name: str) -> None:
        """Forget `name`; requests in flight keep the configuration they were given."""
        with self._lock:
            if name not in self.plans:
                raise UnknownPlan(f"no plan named {name!r}")
            del self.plans[name]

    # --- configurations -> slots -------------------------------------------------------
    def resolve(self, entries: Sequence[SteerEntry]) -> tuple[tuple | None, SteeringPlan | None]:
        """(key, combined plan), or (None, None) for no steering. Raises on unknown plans."""
        if not entries:
            return None, None
        key, combined = [], None
        with self._lock:
            for e in entries:
                e.check()
                if e.plan not in self.plans:
                    raise UnknownPlan(f"unknown steering plan {e.plan!r}; loaded: {sorted(self.plans)}")
                version, plan = self.plans[e.plan]
                if e.strength is not None:
                    plan = plan.with_strength(float(e.strength))
                if e.positions is not None:
                    plan = plan.with_positions(e.positions)
                key.append((e.plan, version, e.strength, e.positions))
                combined = plan if combined is None else combined + plan
        return tuple(key), combined

    def acquire(self, key: tuple | None, plan: SteeringPlan | None) -> int:
        """A slot holding this configuration (-1 for none), loading it into a free slot if needed.

        Concurrent requests with the same configuration share one slot; they wait for its load.
        """
        return self.slots.acquire(key, plan)

    def release(self, slot: int | None) -> None:
        self.slots.release(slot)

    def _load(self, slot: int, plan: SteeringPlan) -> None:
        with on_compute_stream(self.manager):  # ordered with the steps' kernels (CUDA)
            self.bank.load(slot, plan)  # waits for the step in progress

    # --- requests ----------------------------------------------------------------------
    def encode(self, prompt: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of a prompt; add_special_tokens=False for text a chat template rendered
        (it holds the BOS already: adding it again would make two)."""
        ids = self.tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"]
        if not ids:
            raise SteeringError("the prompt is empty")
        if len(ids) > self.max_prompt_tokens:
            raise SteeringError(
                f"the prompt has {len(ids)} tokens; this server's limit is {self.max_prompt_tokens}"
            )
        return ids

    def check_fits(self, n_prompt: int, max_new_tokens: int) -> None:
        """A request that could never be scheduled (even on an empty cache) is a SteeringError."""
        total = n_prompt + max_new_tokens
        if total > self.kv_capacity:
            raise SteeringError(
                f"prompt ({n_prompt} tokens) + max_tokens ({max_new_tokens}) = {total} tokens can never "
                f"fit this server's KV cache: one request holds at most {self.kv_capacity} tokens (--kv-tokens)"
            )

    async def generate(
        self,
        ids: list[int],
        entries: Sequence[SteerEntry],
        params: SamplingParams | int,
        stream: bool = False,
        monitors: Sequence[str] = (),
    ) -> AsyncIterator[Generated]:
        """Yield `Generated` snapshots: after every token when streaming, else once at the end.

        Raises SteeringError (bad steering, a request that can never fit), EngineOverloaded
        (more than `max_waiting` requests in flight), EngineUnavailable (draining, closed,
        cancelled by drain), GenerationFailed (its step raised, or neither it nor the engine
        made progress for `step_timeout_s`). Closing the iterator early (a client that went
        away) cancels the request. Whatever ends it, its RequestContext releases everything
        it held (KV blocks, slot, result handler, every table entry) in one place.
        `params` may be a plain int (max new tokens, greedy: the old call form).
        """
        if not isinstance(params, SamplingParams):
            params = SamplingParams(max_new_tokens=int(params))
        self._admit(len(ids), params.max_new_tokens)
        key, plan = self.resolve(entries)
        self._ensure_running()
        ctx = RequestContext(self, key, plan, params, len(ids))
        ctx.tracked.monitors = list(monitors)  # names whose readings it gets (serve/monitors.py)
        try:
            ctx.slot = await self._acquire(key, plan)
            ctx.open()
            self._submit(ctx, ids, stream)
            async for snap in ctx.snapshots():
                yield snap
        finally:
            ctx.close()

    def _admit(self, n_prompt: int, max_new_tokens: int) -> None:
        if not self.accepting or self._closed:
            raise EngineUnavailable("the engine is not accepting requests (draining or closed)")
        if len(self._inflight) >= self.max_waiting:
            raise EngineOverloaded(
                f"{len(self._inflight)} requests in flight; this engine's limit is {self.max_waiting}"
            )
        self.check_fits(n_prompt, max_new_tokens)

    def _submit(self, ctx: RequestContext, ids: list[int], stream: bool) -> None:
        self.stats["requests_total"] += 1
        self.stats["prompt_tokens"] += len(ids)
        added = self.manager.add_request(
            ids,
            request_id=ctx.rid,
            max_new_tokens=ctx.params.max_new_tokens,
            streaming=stream,
            eos_token_id=sorted(ctx.stop_ids) or -1,
        )
        if added is None:
            raise EngineUnavailable("the engine's manager refused the request (stopping)")

    async def _acquire(self, key, plan) -> int:
        """acquire() off the event loop; a caller cancelled meanwhile releases the slot it got."""
        fut = asyncio.ensure_future(asyncio.to_thread(self.acquire, key, plan))
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:

            def _release(f):
                if not f.cancelled() and f.exception() is None:
                    self.release(f.result())

            fut.add_done_callback(_release)
            raise

    def tokens_generated(self) -> int:
        """Tokens sampled so far: ended requests plus those still running (also ones that are
        later cancelled), counted as the seam samples them, not when a request finishes."""
        with self.hooks.lock:
            return self.tokens_done + sum(len(t.choices) for t in self.hooks.requests.values())

    def registrations(self) -> dict[str, int]:
        """Entries each per-request table holds; all 0 when no request is in flight."""
        return registrations(self)

    def metrics(self) -> dict:
        up = max(time.time() - self.started, 1e-9)
        with self._lock:
            plans = sorted(self.plans)
        busy = self.slots.busy()
        tokens = self.tokens_generated()
        return {
            **self.stats,
            "tokens_generated": tokens,
            "histograms": self.latency.snapshot(),
            "failed_steps": self.hooks.failed_steps,
            "steps": self.hooks.steps,
            "requests_active": self.active,
            "queue_depth": self.manager.input_queue.qsize() + self._waiting(),
            "tokens_per_second": tokens / up,
            "uptime_s": up,
            "resident_plans": plans,
            "slots": self.bank.slots,
            "slots_busy": busy,
            "registrations": self.registrations(),
        }

    def _waiting(self) -> int:
        bp = self.manager.batch_processor
        return len(getattr(getattr(bp, "scheduler", None), "waiting_requests", {}) or {})

    def close(self) -> None:
        self.accepting, self._closed = False, True
        if self.manager._generation_thread is not None:
            self.manager.stop(block=True, timeout=10)
        self.bank.revert()
