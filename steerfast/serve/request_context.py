"""One request's life in the Engine: its registrations, entered in order and released in one
place, and its outputs as `Generated` snapshots.

A request in flight is entered in five tables, each under its own lock:

    inflight  Engine._inflight                         drain() cancels through it
    rows      PackedRows.slot_of                        which bank slot steers the request's rows
    tracked   StepHooks.requests                        the seam: its sampling and chosen tokens
    prefix    PrefixKeys                                its prefix-cache key (serve/prefix.py)
    handler   manager.output_router.result_handlers     where the manager sends its outputs

plus its slot's reference (`Engine.release`), its gate row (`bank.gates`; a cancelled request's
is released again once the scheduler has dropped it, see `release_departed_gates`) and, until
it ends, its request in the manager (cancelled unless it finished). `open()` enters them one by
one and notes each; `close()` undoes exactly what was entered, in reverse, once, whatever
ended the request (finished, failed, timed out, cancelled by drain or a client that left).
`registrations(engine)` counts every table, so tests can check that nothing stays behind.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator

from .exceptions import EngineUnavailable, GenerationFailed
from .params import Generated, SamplingParams
from .prefix import reads_whole_prompt
from .seam import Tracked

POLL_S = 0.25  # how often a waiting request checks for drain, a dead manager and progress


class RequestContext:
    def __init__(self, engine, key, plan, params: SamplingParams, n_prompt: int):
        self.engine, self.key, self.plan = engine, key, plan
        self.params, self.n_prompt = params, n_prompt
        self.slot: int | None = None  # set once acquired; released by close()
        self.rid = f"sf-{uuid.uuid4().hex[:16]}"
        self.seed = params.seed if params.seed is not None else secrets.randbits(63)
        self.stop_ids = set(engine.eos_ids) | set(params.stop_token_ids)
        self.outputs: asyncio.Queue = asyncio.Queue()
        self.cancel = asyncio.Event()
        self.tracked = Tracked(params, self.seed)
        self.finished = False  # the manager finished it: nothing to cancel there
        self._entered: list[str] = []
        self._closed = False

    # --- registrations -------------------------------------------------------------------
    def open(self) -> None:
        """Enter the request in every table."""
        e, rid = self.engine, self.rid
        e._inflight[rid] = (asyncio.get_running_loop(), self.cancel)
        self._entered.append("inflight")
        if self.slot is not None and self.slot >= 0:
            with e.rows.lock:
                e.rows.slot_of[rid] = self.slot
            self._entered.append("rows")
        with e.hooks.lock:
            e.hooks.requests[rid] = self.tracked
        self._entered.append("tracked")
        if e.prefix_keys is not None:
            # a gate averaged over the prompt must compute all of it (serve/prefix.py)
            e.prefix_keys.register(rid, self.key, self.n_prompt, share=not reads_whole_prompt(self.plan))
            self._entered.append("prefix")
        e.manager.register_result_handler(rid, self.outputs.put_nowait)
        self._entered.append("handler")
        e.active += 1
        self._entered.append("active")

    def close(self) -> None:
        """Release everything `open()` entered, the gate and the slot; a second call does nothing.
        Every release runs even if one before it raised (the first error is raised after)."""
        if self._closed:
            return
        self._closed = True
        e, rid = self.engine, self.rid
        undo = {
            "active": self._leave,
            "handler": self._drop_handler,
            "prefix": lambda: e.prefix_keys.forget(rid),
            "tracked": self._drop_tracked,
            "rows": self._drop_rows,
            "inflight": lambda: e._inflight.pop(rid, None),
        }
        steps = [undo[name] for name in reversed(self._entered)]
        steps += [self._release_gate, lambda: e.release(self.slot)]
        errors = []
        for step in steps:
            try:
                step()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def _leave(self) -> None:
        e = self.engine
        e.active -= 1
        if not self.finished:
            e.stats["requests_cancelled"] += 1
            e.manager.cancel_request(self.rid)

    def _release_gate(self) -> None:
        """A conditional plan's per-request gate row (runtime/gates.py). A cancelled request may
        still be in the step the manager runs next (it drops it at the step after), and that
        step would give it a row again: such a request is released again once it has left
        the scheduler (`release_departed_gates`)."""
        e = self.engine
        e.bank.gates.release(self.rid)
        if not self.finished and self._entered:
            with e.gates_lock:
                e.gates_pending.add(self.rid)
        release_departed_gates(e)

    def _drop_handler(self) -> None:
        router = self.engine.manager.output_router
        with router._lock:
            router.result_handlers.pop(self.rid, None)

    def _drop_tracked(self) -> None:
        e = self.engine
        with e.hooks.lock:  # its tokens move from "live" to "done" under the lock metrics() reads
            e.hooks.requests.pop(self.rid, None)
            e.tokens_done += len(self.tracked.choices)

    def _drop_rows(self) -> None:
        e = self.engine
        with e.rows.lock:
            e.rows.slot_of.pop(self.rid, None)

    # --- outputs -------------------------------------------------------------------------
    def progress(self) -> tuple[int, int]:
        """(tokens this request sampled, engine steps run): either moving is progress."""
        return len(self.tracked.choices), self.engine.hooks.steps

    async def next_output(self):
        """The request's next output. Fails on drain, on a dead manager, or once neither this
        request (tokens sampled) nor the engine (steps run) made progress for step_timeout_s:
        a request producing tokens, or waiting in a queue that moves, is never timed out."""
        e = self.engine
        mark, since = self.progress(), time.monotonic()
        while True:
            if self.cancel.is_set():
                raise EngineUnavailable("the server is shutting down; the request was cancelled")
            try:
                return await asyncio.wait_for(self.outputs.get(), timeout=POLL_S)
            except asyncio.TimeoutError:
                pass
            if not e.manager.is_running() and self.outputs.empty():
                e.stats["requests_failed"] += 1
                err = e.manager.background_thread_status.fatal_error
                raise GenerationFailed(f"the engine's manager loop stopped ({err or 'stopped'})")
            now, progress = time.monotonic(), self.progress()
            if progress != mark:
                mark, since = progress, now
            elif now - since > e.step_timeout_s:
                e.stats["requests_failed"] += 1
                raise GenerationFailed(
                    f"no progress for {e.step_timeout_s:g} s: neither this request nor the engine "
                    f"advanced (request {self.rid})"
                )

    async def snapshots(self) -> AsyncIterator[Generated]:
        """`Generated` after every output until the request finishes (or raises)."""
        e = self.engine
        t0 = last = time.monotonic()
        seen = 0
        while True:
            out = await self.next_output()
            now = time.monotonic()
            n = len(out.generated_tokens)
            if n > seen:
                gap = now - (t0 if seen == 0 else last)
                e.latency.observe("ttft_seconds" if seen == 0 else "inter_token_seconds", gap)
                # gaps of tokens delivered together (non-streaming) are not observed one by one
                seen, last = n, now
            if out.is_finished() and out.error is not None:
                self.finished = True
                e.stats["requests_failed"] += 1
                raise GenerationFailed(f"generation failed: {out.error}")
            snap = self.snapshot(out)
            self.finished = snap.finished
            yield snap
            if snap.finished:
                return

    def snapshot(self, out) -> Generated:
        toks = list(out.generated_tokens)
        done = out.is_finished()
        reason = None
        if done:
            reason = "stop" if toks and toks[-1] in self.stop_ids else "length"
        g = Generated(token_ids=toks, finished=done, finish_reason=reason, prompt_tokens=self.n_prompt)
        if self.params.logprobs is not None:
            choices = self.tracked.choices[: len(toks)]
            g.logprobs = [c.logprob for c in choices]
            if self.params.logprobs > 0:
                g.top_logprobs = [c.top for c in choices]
        if self.tracked.monitors:  # per generated token, the asked monitors' readings (serve/monitors.py)
            g.extra["monitor_readings"] = self.tracked.readings[: len(toks)]
        return g


def release_departed_gates(engine) -> None:
    """Release the gate rows of cancelled requests that have left the manager's scheduler (not
    running, waiting, or waiting to be cancelled): no later step can give them a row again."""
    with engine.gates_lock:
        if not engine.gates_pending:
            return
        sch = getattr(engine.manager.batch_processor, "scheduler", None)
        if sch is None:
            gone = set(engine.gates_pending)
        else:
            # each set() copies in C under the GIL: atomic against the manager thread's changes
            live = set(sch.active_requests) | set(sch.waiting_requests) | set(sch._requests_to_cancel)
            gone = engine.gates_pending - live
        for rid in gone:
            engine.bank.gates.release(rid)
        engine.gates_pending -= gone


def registrations(engine) -> dict[str, int]:
    """Entries each per-request table of `engine` holds; all 0 when no request is in flight.
    (Releases the gate rows of cancelled requests the manager has dropped meanwhile first.)"""
    release_departed_gates(engine)
    router = engine.manager.output_router
    with router._lock:
        handlers = len(router.result_handlers)
    with engine.hooks.lock:
        tracked = len(engine.hooks.requests)
    with engine.rows.lock:
        rows = len(engine.rows.slot_of)
    keys = engine.prefix_keys
    store = getattr(engine.bank.gates, "_store", None)
    return {
        "inflight": len(engine._inflight),
        "rows": rows,
        "tracked": tracked,
        "prefix": len(keys._entries) + len(keys.stats.per_request) if keys is not None else 0,
        "handlers": handlers,
        "slots_referenced": engine.slots.busy(),
        "gates": len(store.row_of) if store is not None else 0,
        "gates_pending": len(engine.gates_pending),
        "active": engine.active,
    }


__all__ = ["RequestContext", "registrations", "POLL_S"]
