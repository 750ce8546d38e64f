"""Which steering configuration each bank slot holds, and how many requests in flight use it.

A configuration (the resolved steering of a request) occupies a slot while requests using it
are in flight; identical configurations share it (later ones wait for its load). A free slot
is reused least recently used first. Loading goes through `load(slot, plan)` (the engine's
`bank.load` on the compute stream), which waits for the step in progress.
"""

from __future__ import annotations

import threading
import time

from ..errors import SteeringError
from .exceptions import EngineBusy, GenerationFailed


class SlotTable:
    def __init__(self, slots: int, load, wait_s: float):
        self.n, self.load, self.wait_s = slots, load, wait_s
        self.key: list[tuple | None] = [None] * slots
        self.refs = [0] * slots
        self.used = [0.0] * slots
        self.ready = [threading.Event() for _ in range(slots)]
        self.lock = threading.Lock()

    def busy(self) -> int:
        with self.lock:
            return sum(1 for r in self.refs if r > 0)

    def acquire(self, key: tuple | None, plan) -> int:
        """A slot holding this configuration (-1 for none), loading it into a free slot if needed."""
        if key is None:
            return -1
        with self.lock:
            if key in self.key:
                slot = self.key.index(key)
                self.refs[slot] += 1
                ready, loading = self.ready[slot], False
            else:
                free = [s for s in range(self.n) if self.refs[s] == 0]
                if not free:
                    raise EngineBusy(
                        f"all {self.n} steering slots hold configurations of requests "
                        f"in flight; retry when one finishes"
                    )
                slot = min(free, key=lambda s: self.used[s])
                self.key[slot], self.refs[slot] = key, 1
                ready = self.ready[slot] = threading.Event()
                loading = True
        if loading:
            try:
                self.load(slot, plan)
            except BaseException:
                with self.lock:
                    self.key[slot] = None
                    self.refs[slot] -= 1
                ready.set()
                raise
            ready.set()
            return slot
        if not ready.wait(timeout=self.wait_s):
            self.release(slot)
            raise GenerationFailed(f"loading this steering configuration took over {self.wait_s:.0f} s")
        if self.key[slot] != key:
            self.release(slot)
            raise SteeringError("loading this steering configuration failed")
        return slot

    def release(self, slot: int | None) -> None:
        if slot is not None and slot >= 0:
            with self.lock:
                self.refs[slot] -= 1
                self.used[slot] = time.monotonic()


__all__ = ["SlotTable"]
