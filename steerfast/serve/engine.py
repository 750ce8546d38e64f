"""Engine glue: requests with steering -> bank slots -> transformers' continuous batching.

One SteeringBank of S slots patches the model once. A *configuration* (the list of
{plan, strength, positions} a request names, resolved to one plan) occupies a slot while
requests using it are in flight; identical configurations share it. Named plans are only
held in memory (at most S of them) until a request needs one. Loading a slot goes through
`bank.load`, which waits for the forward in progress (the bank's lock), so a step never
sees half-written tables; requests join and leave at step boundaries (the engine's own
scheduling) and nothing is re-patched.
"""

from __future__ import annotations

import asyncio
import itertools
import math
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
from .prefix import PrefixKeys, prepare_manager

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


class EngineBusy(SteeringError):
    """Every slot holds a configuration that requests in flight still use."""


class UnknownPlan(SteeringError):
    pass


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
    ):
        from transformers import GenerationConfig
        from transformers.generation.continuous_batching.utils import WorkloadHints

        self.model, self.tokenizer = model, tokenizer
        self.max_prompt_tokens, self.max_new_tokens = max_prompt_tokens, max_new_tokens
        self.bank = SteeringBank(model, slots=slots)
        self.rows = PackedRows(self.bank)
        self.bank.packed_rows = self.rows
        self.plans: dict[str, tuple[int, SteeringPlan]] = {}  # name -> (version, plan)
        self._versions = itertools.count(1)
        self._lock = threading.Lock()
        self._slot_key: list[tuple | None] = [None] * slots
        self._slot_refs = [0] * slots
        self._slot_used = [0.0] * slots
        self._ready = [threading.Event() for _ in range(slots)]
        self.stats = {"requests_total": 0, "requests_failed": 0, "tokens_generated": 0}
        self.active = 0
        self.started = time.time()
        eos = tokenizer.eos_token_id
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
        self.manager = model.init_continuous_batching(
            generation_config=gen, continuous_batching_config=cb, workload_hints=hints
        )
        if self.prefix_keys is not None:
            prepare_manager(self.manager, self.prefix_keys)
        self.manager.start()

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
                raise SteeringError(f"a plan named {name!r} is already loaded; delete it first")
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
            ready.wait()
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

    async def generate(
        self, ids: list[int], entries: Sequence[SteerEntry], max_new_tokens: int, stream: bool = False
    ) -> AsyncIterator:
        """Yield the engine's GenerationOutput (every token when streaming, else once at the end)."""
        key, plan = self.resolve(entries)
        slot = await asyncio.to_thread(self.acquire, key, plan)
        rid = f"sf-{uuid.uuid4().hex[:16]}"
        outputs: asyncio.Queue = asyncio.Queue()
        finished = False
        try:
            with self.rows.lock:
                if slot >= 0:
                    self.rows.slot_of[rid] = slot
            if self.prefix_keys is not None:
                self.prefix_keys.register(rid, key, len(ids))
            self.manager.register_result_handler(rid, outputs.put_nowait)
            self.stats["requests_total"] += 1
            self.active += 1
            self.manager.add_request(ids, request_id=rid, max_new_tokens=max_new_tokens, streaming=stream)
            while True:
                out = await outputs.get()
                if out.is_finished():
                    finished = True
                    if out.error is not None:
                        self.stats["requests_failed"] += 1
                        raise RuntimeError(f"generation failed: {out.error}")
                    self.stats["tokens_generated"] += len(out.generated_tokens)
                    yield out
                    return
                yield out
        finally:
            self.active -= 1
            if not finished:
                self.manager.cancel_request(rid)
            with self.rows.lock:
                self.rows.slot_of.pop(rid, None)
            if self.prefix_keys is not None:
                self.prefix_keys.forget(rid)
            self.release(slot)

    def metrics(self) -> dict:
        up = max(time.time() - self.started, 1e-9)
        with self._lock:
            busy = sum(1 for r in self._slot_refs if r > 0)
            plans = sorted(self.plans)
        return {
            **self.stats,
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
        self.manager.stop(block=True, timeout=10)
        self.bank.revert()
