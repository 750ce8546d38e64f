"""Engine glue: requests with steering -> bank slots -> transformers' continuous batching.

One SteeringBank of S slots patches the model once. A *configuration* (the list of
{plan, strength, positions} a request names, resolved to one plan) occupies a slot while
requests using it are in flight; identical configurations share it. Named plans are only
held in memory (at most S of them) until a request needs one. Loading a slot goes through
`bank.load`, which waits for the forward in progress (the bank's lock), so a step never
sees half-written tables; requests join and leave at step boundaries (the engine's own
scheduling) and nothing is re-patched.

Requests (`generate(ids, entries, params: SamplingParams, stream)` -> `Generated` snapshots)
go through serve/seam.py: the step's requests are handed to the bank's row maps explicitly,
each request's next token is chosen by serve/sampling.py (greedy or seeded sampling, raw
logprobs), a failing step fails only its own requests, and the manager is restarted if its
loop ever dies. Every wait is bounded (`step_timeout_s` between two outputs of a request).

Metrics: `metrics()` returns counts plus `histograms` (see `LatencyStats`): time to first
token (`ttft_seconds`) and inter-token gaps (`inter_token_seconds`), each
{"buckets": [(upper bound, cumulative count)], "sum", "count"}; `stats_listener`, if set, is
called as listener(kind, seconds) with kind "ttft" or "itl" for every observation.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from ..errors import SteeringError
from ..plan import SteeringPlan
from ..positions import parse_policy
from ..runtime.bank import SteeringBank
from ..runtime.packed import PackedRows
from .device import on_compute_stream
from .exceptions import (  # noqa: F401 (re-exported: callers import them from here)
    EngineBusy,
    EngineOverloaded,
    EngineUnavailable,
    GenerationFailed,
    PlanExists,
    UnknownPlan,
)
from .params import Generated, SamplingParams
from .prefix import PrefixKeys, prepare_manager, reads_whole_prompt
from .seam import InjectedFault, StepHooks, Tracked, steering_manager  # noqa: F401 (re-exported)

PAGE = 64


def cb_config(kv_tokens: int = 16384, max_batch_tokens: int = 1024, prefix_cache: bool = False):
    """A bounded paged cache (left alone, the engine sizes it from free memory: ~15 GB on CPU).

    Prefix block sharing (`prefix_cache`) may be on only where the cache is keyed by steering
    configuration (serve/prefix.py, as the Engine does): unkeyed, a shared block would carry
    one request's steered KV into another's prompt, so it is off by default.

    CUDA graphs are off explicitly: a captured graph replays the row maps and table pointers
    of its capture, while the bank rebuilds the maps on the host every step and reallocates
    its tables when a plan with a new layout loads. Async double-buffering (on by default
    only with graphs) is off with them.
    """
    from transformers import ContinuousBatchingConfig

    return ContinuousBatchingConfig(
        allow_block_sharing=prefix_cache,
        page_size=PAGE,
        num_blocks=max(8, kv_tokens // PAGE),
        max_batch_tokens=max_batch_tokens,
        use_cuda_graph=False,
        use_async_batching=False,
    )


BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class LatencyStats:
    """Time to first token and inter-token gaps, as cumulative histograms (seconds).

    `snapshot()` -> {"ttft_seconds": h, "inter_token_seconds": h}, h = {"buckets":
    [(upper bound, cumulative count), ..., (inf, count)], "sum": float, "count": int}.
    """

    def __init__(self, buckets=BUCKETS_S):
        self.bounds = tuple(buckets) + (math.inf,)
        self._lock = threading.Lock()
        self._h = {name: ([0] * len(self.bounds), [0.0]) for name in ("ttft_seconds", "inter_token_seconds")}
        self.listener = None

    def observe(self, name: str, seconds: float) -> None:
        counts, total = self._h[name]
        with self._lock:
            counts[bisect.bisect_left(self.bounds, seconds)] += 1
            total[0] += seconds
        if self.listener is not None:
            self.listener("ttft" if name == "ttft_seconds" else "itl", seconds)

    def snapshot(self) -> dict:
        with self._lock:
            out = {}
            for name, (counts, total) in self._h.items():
                cum = list(itertools.accumulate(counts))
                out[name] = {"buckets": list(zip(self.bounds, cum)), "sum": total[0], "count": cum[-1]}
            return out


@dataclass(frozen=True)
class SteerEntry:
    plan: str
    strength: float | None = None
    positions: str | None = None

    def check(self) -> None:
        if self.strength is not None and (
            isinstance(self.strength, bool)
            or not isinstance(self.strength, (int, float))
            or not math.isfinite(self.strength)
        ):
            raise SteeringError(f"steering strength must be a finite number, got {self.strength!r}")
        if self.positions is not None:
            parse_policy(self.positions)


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
        self._slot_key: list[tuple | None] = [None] * slots
        self._slot_refs = [0] * slots
        self._slot_used = [0.0] * slots
        self._ready = [threading.Event() for _ in range(slots)]
        self.stats = {
            "requests_total": 0,
            "requests_failed": 0,
            "requests_cancelled": 0,
            "tokens_generated": 0,
            "prompt_tokens": 0,
            "manager_restarts": 0,
        }
        self.latency = LatencyStats()
        self.active = 0
        self.started = time.time()
        self.max_waiting, self.step_timeout_s = max_waiting, step_timeout_s
        self.accepting, self._closed = True, False
        self._inflight: dict[str, asyncio.Event] = {}  # request id -> set to cancel it (drain)
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
        if (
            not isinstance(name, str)
            or not name
            or len(name) > 64
            or not all(c.isalnum() or c in "-_." for c in name)
        ):
            raise SteeringError(
                f"plan name must be 1-64 characters of letters, digits, '-', '_', '.', got {name!r}"
            )
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
        if key is None:
            return -1
        with self._lock:
            if key in self._slot_key:
                slot = self._slot_key.index(key)
                self._slot_refs[slot] += 1
                ready, loading = self._ready[slot], False
            else:
                free = [s for s in range(self.bank.slots) if self._slot_refs[s] == 0]
                if not free:
                    raise EngineBusy(
                        f"all {self.bank.slots} steering slots hold configurations of requests "
                        f"in flight; retry when one finishes"
                    )
                slot = min(free, key=lambda s: self._slot_used[s])
                self._slot_key[slot], self._slot_refs[slot] = key, 1
                ready = self._ready[slot] = threading.Event()
                loading = True
        if loading:
            try:
                with on_compute_stream(self.manager):  # ordered with the steps' kernels (CUDA)
                    self.bank.load(slot, plan)  # waits for the step in progress
            except BaseException:
                with self._lock:
                    self._slot_key[slot] = None
                    self._slot_refs[slot] -= 1
                ready.set()
                raise
            ready.set()
        else:
            if not ready.wait(timeout=self.step_timeout_s):
                self.release(slot)
                raise GenerationFailed(
                    f"loading this steering configuration took over {self.step_timeout_s:.0f} s"
                )
            if self._slot_key[slot] != key:
                self.release(slot)
                raise SteeringError("loading this steering configuration failed")
        return slot

    def release(self, slot: int) -> None:
        if slot >= 0:
            with self._lock:
                self._slot_refs[slot] -= 1
                self._slot_used[slot] = time.monotonic()

    # --- requests ----------------------------------------------------------------------
    def encode(self, prompt: str) -> list[int]:
        ids = self.tokenizer(prompt)["input_ids"]
        if not ids:
            raise SteeringError("the prompt is empty")
        if len(ids) > self.max_prompt_tokens:
            raise SteeringError(
                f"the prompt has {len(ids)} tokens; this server's limit is {self.max_prompt_tokens}"
            )
        return ids

    def check_max_tokens(self, n) -> int:
        if n is None:
            return 16
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= self.max_new_tokens:
            raise SteeringError(f"max_tokens must be an int in 1..{self.max_new_tokens}, got {n!r}")
        return n

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
        cancelled by drain), GenerationFailed (its step raised, or no output for
        `step_timeout_s`). Closing the iterator early (a client that went away) cancels the
        request: its KV blocks, slot and result handler are freed.
        `params` may be a plain int (max new tokens, greedy: the old call form).
        """
        if not isinstance(params, SamplingParams):
            params = SamplingParams(max_new_tokens=int(params))
        if not self.accepting or self._closed:
            raise EngineUnavailable("the engine is not accepting requests (draining or closed)")
        if len(self._inflight) >= self.max_waiting:
            raise EngineOverloaded(
                f"{len(self._inflight)} requests in flight; this engine's limit is {self.max_waiting}"
            )
        self.check_fits(len(ids), params.max_new_tokens)
        key, plan = self.resolve(entries)
        self._ensure_running()
        slot = await self._acquire(key, plan)
        rid = f"sf-{uuid.uuid4().hex[:16]}"
        loop = asyncio.get_running_loop()
        outputs: asyncio.Queue = asyncio.Queue()
        cancel = asyncio.Event()
        stop_ids = set(self.eos_ids) | set(params.stop_token_ids)
        seed = params.seed if params.seed is not None else secrets.randbits(63)
        finished = False
        self._inflight[rid] = (loop, cancel)
        try:
            with self.rows.lock:
                if slot >= 0:
                    self.rows.slot_of[rid] = slot
            with self.hooks.lock:
                self.hooks.requests[rid] = tracked = Tracked(params, seed, monitors=list(monitors))
            if self.prefix_keys is not None:
                # a gate averaged over the prompt must compute all of it (serve/prefix.py)
                self.prefix_keys.register(rid, key, len(ids), share=not reads_whole_prompt(plan))
            self.manager.register_result_handler(rid, outputs.put_nowait)
            self.stats["requests_total"] += 1
            self.stats["prompt_tokens"] += len(ids)
            self.active += 1
            added = self.manager.add_request(
                ids,
                request_id=rid,
                max_new_tokens=params.max_new_tokens,
                streaming=stream,
                eos_token_id=sorted(stop_ids) or -1,
            )
            if added is None:
                raise EngineUnavailable("the engine's manager refused the request (stopping)")
            t0 = last = time.monotonic()
            seen = 0
            while True:
                out = await self._next(outputs, cancel, rid)
                now = time.monotonic()
                n = len(out.generated_tokens)
                if n > seen:
                    self.latency.observe(
                        "ttft_seconds" if seen == 0 else "inter_token_seconds",
                        now - (t0 if seen == 0 else last),
                    )
                    # gaps of tokens delivered together (non-streaming) are not observed one by one
                    seen, last = n, now
                if out.is_finished() and out.error is not None:
                    finished = True
                    self.stats["requests_failed"] += 1
                    raise GenerationFailed(f"generation failed: {out.error}")
                snap = self._snapshot(out, tracked, params, stop_ids, len(ids))
                if snap.finished:
                    finished = True
                    self.stats["tokens_generated"] += n
                    yield snap
                    return
                yield snap
        finally:
            self.active -= 1
            self._inflight.pop(rid, None)
            if not finished:
                self.stats["requests_cancelled"] += 1
                self.manager.cancel_request(rid)
            router = self.manager.output_router
            with router._lock:
                router.result_handlers.pop(rid, None)
            with self.hooks.lock:
                self.hooks.requests.pop(rid, None)
            with self.rows.lock:
                self.rows.slot_of.pop(rid, None)
            self.bank.gates.release(rid)  # a conditional plan's per-request gate (runtime/gates.py)
            if self.prefix_keys is not None:
                self.prefix_keys.forget(rid)
            self.release(slot)

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

    async def _next(self, outputs: asyncio.Queue, cancel: asyncio.Event, rid: str):
        """The request's next output; bounded by step_timeout_s, a dead manager, or drain."""
        deadline = time.monotonic() + self.step_timeout_s
        while True:
            if cancel.is_set():
                raise EngineUnavailable("the server is shutting down; the request was cancelled")
            try:
                return await asyncio.wait_for(outputs.get(), timeout=0.25)
            except asyncio.TimeoutError:
                pass
            if not self.manager.is_running() and outputs.empty():
                self.stats["requests_failed"] += 1
                err = self.manager.background_thread_status.fatal_error
                raise GenerationFailed(f"the engine's manager loop stopped ({err or 'stopped'})")
            if time.monotonic() > deadline:
                self.stats["requests_failed"] += 1
                raise GenerationFailed(f"no output for {self.step_timeout_s:.0f} s (request {rid})")

    @staticmethod
    def _snapshot(out, tracked, params: SamplingParams, stop_ids: set, n_prompt: int) -> Generated:
        toks = list(out.generated_tokens)
        done = out.is_finished()
        reason = None
        if done:
            reason = "stop" if toks and toks[-1] in stop_ids else "length"
        g = Generated(token_ids=toks, finished=done, finish_reason=reason, prompt_tokens=n_prompt)
        if tracked.monitors:  # per generated token, the asked monitors' readings (serve/monitors.py)
            g.extra["monitor_readings"] = tracked.readings[: len(toks)]
        if params.logprobs is not None:
            choices = tracked.choices[: len(toks)]
            g.logprobs = [c.logprob for c in choices]
            if params.logprobs > 0:
                g.top_logprobs = [c.top for c in choices]
        return g

    def metrics(self) -> dict:
        up = max(time.time() - self.started, 1e-9)
        with self._lock:
            busy = sum(1 for r in self._slot_refs if r > 0)
            plans = sorted(self.plans)
        return {
            **self.stats,
            "histograms": self.latency.snapshot(),
            "failed_steps": self.hooks.failed_steps,
            "steps": self.hooks.steps,
            "requests_active": self.active,
            "queue_depth": self.manager.input_queue.qsize() + self._waiting(),
            "tokens_per_second": self.stats["tokens_generated"] / up,
            "uptime_s": up,
            "resident_plans": plans,
            "slots": self.bank.slots,
            "slots_busy": busy,
        }

    def _waiting(self) -> int:
        bp = self.manager.batch_processor
        return len(getattr(getattr(bp, "scheduler", None), "waiting_requests", {}) or {})

    def close(self) -> None:
        self.accepting, self._closed = False, True
        if self.manager._generation_thread is not None:
            self.manager.stop(block=True, timeout=10)
        self.bank.revert()


def model_eos_ids(model, tokenizer) -> list[int]:
    """Every end id: the model's generation_config (int or list), its config, the tokenizer's."""
    ids: list[int] = []
    for src in (getattr(model, "generation_config", None), getattr(model, "config", None), tokenizer):
        v = getattr(src, "eos_token_id", None) if src is not None else None
        for i in v if isinstance(v, (list, tuple)) else [v]:
            if isinstance(i, int) and i >= 0 and i not in ids:
                ids.append(i)
    return ids


def max_request_tokens(manager) -> int:
    """The most tokens (prompt + generated) one request can hold on an empty cache."""
    from transformers.generation.continuous_batching.model_runner import infer_max_single_request_tokens

    return int(infer_max_single_request_tokens(manager.batch_processor.cache))
