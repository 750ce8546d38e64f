"""Engine latency histograms: time to first token and inter-token gaps (seconds)."""

from __future__ import annotations

import bisect
import itertools
import math
import threading

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


__all__ = ["LatencyStats", "BUCKETS_S"]
