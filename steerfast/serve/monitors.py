"""Monitors on the server: loaded with it, read per request in the engine's packed steps.

`attach(engine, monitors)` installs one MonitorReader (runtime/monitors.py) on the engine's
model, off until a step holds a request that asked for a monitor. In such a step the seam
(serve/seam.py) calls `begin(states, batch_data)` before the forward — the reader takes the
stream at the step's `logits_indices`, the packed positions whose logits choose the next
tokens — and `end(new_states)` after sampling: one device-to-host copy of the step's
(rows, K) readings, appended to each asking request's `Tracked.readings` (one list of floats
per generated token) and observed in the Prometheus histogram of each monitor. Steps where
no request asks read nothing (the hooks return at once).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ..errors import SteeringError
from ..monitor import Monitor, UnknownMonitor, check_names, requested
from ..runtime.monitors import MonitorReader
from ..runtime.packed import request_key

READING_BUCKETS = (-20, -10, -5, -2, -1, -0.5, 0, 0.5, 1, 2, 5, 10, 20)


def reading_histogram(**kw):
    """`steerfast_monitor_reading{monitor}`, the readings handed to requests (this server's and
    the vLLM plugin's); kw goes to prometheus_client's Histogram (registry=...)."""
    from prometheus_client import Histogram

    return Histogram(
        "steerfast_monitor_reading",
        "Monitor readings of generated tokens (requests that asked for the monitor)",
        ["monitor"],
        buckets=READING_BUCKETS,
        **kw,
    )


class ServerMonitors:
    def __init__(self, engine, monitors: Sequence[Monitor]):
        monitors = list(monitors)
        check_names(monitors)
        self.engine = engine
        self.by_name = {m.name: m for m in monitors}
        self.col = {m.name: k for k, m in enumerate(monitors)}
        self.reader = MonitorReader(engine.model, monitors)
        self.reader.enabled = False
        self.histogram = None
        self._lock = threading.Lock()
        self._step_rows: list | None = None

    # --- requests ---------------------------------------------------------------------
    def check(self, names) -> list[str]:
        """A request's `monitors` field: a list of names the server holds (else SteeringError)."""
        return requested(names, self.by_name, "server")

    def describe(self) -> list[dict]:
        return [
            {"name": m.name, "layer": m.layer, "bias": m.bias, "meta": m.meta} for m in self.by_name.values()
        ]

    # --- metrics ----------------------------------------------------------------------
    def bind_metrics(self, registry) -> None:
        self.histogram = reading_histogram(registry=registry)

    # --- the seam's per-step calls ------------------------------------------------------
    def begin(self, states, batch_data, requests: dict) -> None:
        """Before a step's forward: read it only if one of its requests asked."""
        asking = []
        for i, fs in enumerate(states):
            t = requests.get(request_key(fs.state.request_id))
            if t is not None and t.monitors and fs.has_new_token:
                asking.append(i)
        self.reader.clear()
        if not asking:
            self.reader.enabled = False
            self._step_rows = None
            return
        n_new = sum(1 for fs in states if fs.has_new_token)  # their logits rows come first
        self.reader.enabled = True
        self.reader.packed_index = batch_data["logits_indices"].reshape(-1)[:n_new]
        self._step_rows = asking

    def end(self, new_states, tracked: list) -> None:
        """After sampling: the step's readings to the requests that asked (one host copy)."""
        if self._step_rows is None:
            return
        self.reader.enabled = False
        if not self.reader.n_steps:
            return
        values = self.reader.stacked()[0, : len(new_states)].tolist()
        for row, t in enumerate(tracked):
            if t is None or not t.monitors:
                continue
            picked = [values[row][self.col[n]] for n in t.monitors]
            t.readings.append(picked)
            if self.histogram is not None:
                for n, v in zip(t.monitors, picked):
                    self.histogram.labels(monitor=n).observe(v)

    def close(self) -> None:
        self.reader.close()


def attach(engine, monitors: Sequence[Monitor]) -> ServerMonitors:
    """Give `engine` these monitors (validated against its model first; nothing installed on error)."""
    if getattr(engine, "monitors", None) is not None:
        raise SteeringError("the engine already holds monitors")
    for m in monitors:
        m.validate(engine.model)
    server = ServerMonitors(engine, monitors)
    engine.monitors = server
    engine.hooks.monitors = server
    return server


def load_monitor_files(paths: Sequence[str]) -> list[Monitor]:
    """The monitors of monitor files and plan files (a plan file without monitors adds none)."""
    from ..monitor import load_monitors

    out: list[Monitor] = []
    for p in paths:
        out += load_monitors(p)
    check_names(out, "the server's monitors")
    return out


def chunk_readings(g, names: list[str], start: int, stop: int) -> dict[str, list[float]]:
    """{name: readings of generated tokens start..stop} of an engine snapshot."""
    rows = g.extra.get("monitor_readings", [])[start:stop]
    return {n: [r[k] for r in rows] for k, n in enumerate(names)}


__all__ = ["ServerMonitors", "UnknownMonitor", "attach", "load_monitor_files", "chunk_readings"]


def request_monitors(engine, names) -> list[str]:
    """A request's `monitors` field checked against the engine's (400 when bad or unknown)."""
    from .http_errors import HTTPError

    if names is None:
        return []
    server = getattr(engine, "monitors", None)
    try:
        if server is None:
            raise UnknownMonitor(
                f"this server holds no monitors (start it with --monitor FILE); asked {names!r:.80}"
            )
        return server.check(names)
    except SteeringError as exc:
        code = "unknown_monitor" if isinstance(exc, UnknownMonitor) else "invalid_monitors"
        raise HTTPError(400, str(exc), code, "monitors") from None


def resolve_monitor_path(spec: str) -> str:
    """A file path as given, or the file of a shipped monitor's name (e.g. 'sentiment')."""
    from importlib import resources
    from pathlib import Path

    if Path(spec).is_file():
        return spec
    shipped = resources.files("steerfast.data").joinpath("monitors", f"smollm2_{spec}.safetensors")
    if "/" not in spec and shipped.is_file():
        return str(shipped)
    raise SteeringError(f"--monitor {spec!r}: no such file, and no shipped monitor of that name")
