"""Side-by-side latency measurement: interleaved rounds, warm-up first, medians and spread.

Everything the benchmarks report is a ratio of two cases measured in the same process, in
alternating rounds (A B C A B C ...), so that drift and the load of other processes hit all
cases alike. `interleaved` times whole calls; `interleaved_steps` times one step of each case
per round (e.g. one decode token of each variant, each with its own KV cache).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence


def summarize(samples: Sequence[float]) -> dict:
    """median, min, max, quartiles and the samples themselves (seconds)."""
    v = sorted(samples)
    if not v:
        return {
            "median": float("nan"),
            "min": float("nan"),
            "max": float("nan"),
            "p25": float("nan"),
            "p75": float("nan"),
            "samples": [],
        }
    return {
        "median": statistics.median(v),
        "min": v[0],
        "max": v[-1],
        "p25": quantile(v, 0.25),
        "p75": quantile(v, 0.75),
        "samples": list(samples),
    }


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default), no numpy needed."""
    v = sorted(values)
    if not v:
        return float("nan")
    pos = (len(v) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def relative_spread(samples: Sequence[float]) -> float:
    """Interquartile range over median: the noise of repeated rounds of one case."""
    if len(samples) < 2:
        return float("nan")
    med = statistics.median(samples)
    return (quantile(samples, 0.75) - quantile(samples, 0.25)) / med if med > 0 else float("nan")


def _order(names: list[str], round_index: int, rotate: bool) -> list[str]:
    if not rotate or not names:
        return names
    k = round_index % len(names)
    return names[k:] + names[:k]


CLOCKS = ("wall", "cpu")


def interleaved(
    cases: dict[str, Callable[[], object]],
    rounds: int = 5,
    warmup: int = 1,
    before: Callable[[str], None] | None = None,
    rotate: bool = False,
    clock: str = "wall",
    stop: Callable[[dict[str, list[float]]], bool] | None = None,
) -> dict[str, dict]:
    """Time each case once per round, in turn (A B C A B C ...), so drift hits all alike.

    before(name), if given, runs untimed before each call (e.g. to switch the ops backend).
    rotate=True starts each round one case later (A B C, B C A, ...) so no case always
    follows the same neighbour.
    Both clocks are read around every call: "wall" (time.perf_counter) and "cpu"
    (time.thread_time: CPU time of the calling thread, which with torch.set_num_threads(1)
    is all of the forward's compute and excludes the time other processes hold the core).
    The top-level median/min/max/samples are those of `clock`; result["wall"] and
    result["cpu"] hold both summaries.
    stop(samples), if given, is asked after every round with each case's `clock` samples so far
    and ends the run early when it returns True (`rounds` is then the most rounds run).
    """
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {CLOCKS}, got {clock!r}")
    names = list(cases)
    for _ in range(warmup):
        for name in names:
            if before is not None:
                before(name)
            cases[name]()
    wall: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for name in _order(names, r, rotate):
            if before is not None:
                before(name)
            fn = cases[name]
            c0 = time.thread_time()
            t0 = time.perf_counter()
            fn()
            t1 = time.perf_counter()
            c1 = time.thread_time()
            wall[name].append(t1 - t0)
            cpu[name].append(c1 - c0)
        if stop is not None and stop(cpu if clock == "cpu" else wall):
            break
    out = {}
    for k in names:
        both = {"wall": summarize(wall[k]), "cpu": summarize(cpu[k])}
        out[k] = dict(both[clock], clock=clock, **both)
    return out


def interleaved_steps(
    cases: dict[str, Callable[[], object]],
    steps: int,
    warmup: int = 1,
    before: Callable[[str], None] | None = None,
    rotate: bool = True,
    clock: str = "wall",
) -> dict[str, dict]:
    """Like `interleaved`, with a stateful step per case: round i runs step i of every case.

    Used for decode: each case owns a KV cache and advances one token per round, so the
    per-token samples of all cases are taken at the same sequence lengths, side by side.
    """
    return interleaved(cases, rounds=steps, warmup=warmup, before=before, rotate=rotate, clock=clock)


def per_call(
    cases: dict[str, Callable[[], object]], rounds: int = 15, budget_s: float = 0.01
) -> dict[str, float]:
    """Median seconds per call of each case, for calls too short to time one by one.

    Each case runs in blocks of `inner` calls (sized so the fastest case's block takes about
    `budget_s`), timed with `interleaved` (rotating order, wall clock): blocks of all cases
    alternate round by round, as everywhere else in the benchmarks.
    """
    for fn in cases.values():  # warm up, and size the blocks
        fn()
    fastest = min(interleaved(cases, rounds=1, warmup=0)[k]["median"] for k in cases)
    inner = max(1, int(budget_s / max(fastest, 1e-7)))

    def block(fn):
        def run():
            for _ in range(inner):
                fn()

        return run

    timed = interleaved({k: block(fn) for k, fn in cases.items()}, rounds=rounds, warmup=0, rotate=True)
    return {k: v["median"] / inner for k, v in timed.items()}


__all__ = [
    "CLOCKS",
    "interleaved",
    "interleaved_steps",
    "per_call",
    "summarize",
    "quantile",
    "relative_spread",
]
