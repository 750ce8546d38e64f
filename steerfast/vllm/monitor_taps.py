"""Monitors inside vLLM, worker side: each asking request's readings of the tokens it
generates, taken in the forward that steers it (no second pass).

A pre-hook on every decoder layer some monitor reads takes the stream entering it (hidden +
residual; hidden alone at layer 0, after embed.out's edit) at the step's sampled rows (the
last scheduled token of each asking request that gets a token this step: not a partial
prefill chunk, not a re-prefill after preemption short of its end) and writes
`unit(v)·h + bias` of the layer's monitors into a persistent (rows, K) buffer. Compiled
graphs call it as an opaque op (site_op's pattern) whose body returns at once in steps where
no request asked. Before the next step (or when the frontend asks) the host appends each
request's row of its own monitors' columns to its readings, kept under the key the frontend
gave it until the frontend takes them or `KEEP_FINISHED` later requests have finished.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import Tensor

from . import sites as vsites

KEY = "steerfast_monitors"  # extra_args entry the frontend writes: {"id": key, "names": [...]}
KEEP_FINISHED = 1024  # finished requests whose readings wait for the frontend

_TAPS: dict[str, object] = {}


@torch.library.custom_op("steerfast_vllm::monitor_read_", mutates_args=("buf",))
def monitor_read_(buf: Tensor, hidden: Tensor, residual: Tensor | None, key: str) -> None:
    _TAPS[key](buf, hidden, residual)


@monitor_read_.register_fake
def _(buf: Tensor, hidden: Tensor, residual: Tensor | None, key: str) -> None:
    return None


class MonitorTaps:
    _made = 0

    def __init__(self, model, monitors: list, max_rows: int):
        self.names = [m.name for m in monitors]
        self.col = {m.name: k for k, m in enumerate(monitors)}
        self.buf = torch.zeros(max_rows, len(monitors))
        self.index = torch.zeros(max_rows, dtype=torch.long)
        self.n_rows = 0  # host flag: rows to read this step (0: the taps return at once)
        self.step: list[tuple[str, list[int]]] = []  # (key, columns) of each read row
        self.asked: dict[str, tuple[str, list[int]]] = {}  # request id -> (key, columns)
        self.readings: dict[str, dict] = {}  # key -> {"names", "rows": one list per token}
        self.finished: OrderedDict[str, None] = OrderedDict()
        self.handles, self.keys = [], []
        n, MonitorTaps._made = MonitorTaps._made, MonitorTaps._made + 1
        layers = vsites.decoder_layers(model)
        for layer in sorted({m.layer for m in monitors}):
            ks = [k for k, m in enumerate(monitors) if m.layer == layer]
            vecs_t = torch.stack([monitors[k].vector for k in ks]).t().contiguous()
            bias = torch.tensor([monitors[k].bias for k in ks], dtype=torch.float32)
            key = f"taps{n}:{layer}"
            _TAPS[key] = self._reader(torch.tensor(ks), vecs_t, bias)
            self.keys.append(key)
            self.handles.append(layers[layer].register_forward_pre_hook(self._hook(key)))

    # --- the forward ---------------------------------------------------------------------
    def _reader(self, cols: Tensor, vecs_t: Tensor, bias: Tensor):
        def read(buf, hidden, residual):
            r = self.n_rows
            if r == 0:
                return
            idx = self.index[:r]
            h = hidden.index_select(0, idx)
            if residual is not None:
                h = h + residual.index_select(0, idx)
            buf[:r, cols] = torch.addmm(bias, h.float(), vecs_t)

        return read

    def _hook(self, key: str):
        def pre(module, args):  # (positions, hidden_states, residual)
            if torch.compiler.is_compiling():
                torch.ops.steerfast_vllm.monitor_read_(self.buf, args[1], args[2], key)
            else:
                _TAPS[key](self.buf, args[1], args[2])
            return None

        return pre

    # --- requests ------------------------------------------------------------------------
    def admit(self, request_id: str, ask: dict) -> None:
        if request_id in self.asked:  # resumed after preemption
            return
        key, names = ask["id"], list(ask["names"])
        self.asked[request_id] = (key, [self.col[n] for n in names])
        self.readings[key] = {"names": names, "rows": []}
        self.finished.pop(key, None)  # a reused id: its old eviction must not take these

    def release(self, request_id: str) -> None:
        got = self.asked.pop(request_id, None)
        if got is None:
            return
        self.finished[got[0]] = None
        while len(self.finished) > KEEP_FINISHED:
            old, _ = self.finished.popitem(last=False)
            self.readings.pop(old, None)

    # --- each step -----------------------------------------------------------------------
    def begin_step(self, runner) -> None:
        """Before the forward (after vLLM prepared its inputs): the rows to read."""
        self.flush()
        if not self.asked:
            return
        ib = runner.input_batch
        n = ib.num_reqs
        qsl = runner.query_start_loc.np[: n + 1]
        ends = ib.num_computed_tokens_cpu[:n] + np.diff(qsl)
        rows, step = [], []
        for i, rid in enumerate(ib.req_ids[:n]):
            got = self.asked.get(rid)
            if got is not None and ends[i] >= ib.num_tokens_no_spec[i]:  # samples a token
                rows.append(int(qsl[i + 1]) - 1)
                step.append(got)
        if rows:
            self.index[: len(rows)] = torch.tensor(rows)
        self.n_rows, self.step = len(rows), step

    def flush(self) -> None:
        """The last forward's readings into each request's list (before the buffer is reused)."""
        if not self.n_rows:
            return
        values = self.buf[: self.n_rows].tolist()
        for (key, cols), row in zip(self.step, values):
            got = self.readings.get(key)
            if got is not None:
                got["rows"].append([row[c] for c in cols])
        self.n_rows, self.step = 0, []

    def take(self, keys: list[str], final: bool, starts: list[int] | None = None) -> dict[str, dict]:
        """{key: {"names", "rows"}} so far, each key's rows from its start in `starts` (0 when
        None); `final` hands them over (the frontend has the request's last token) and forgets them."""
        self.flush()
        out = {}
        for i, key in enumerate(keys):
            got = self.readings.pop(key, None) if final else self.readings.get(key)
            if got is not None:
                out[key] = {"names": got["names"], "rows": got["rows"][starts[i] if starts else 0 :]}
        return out

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        for key in self.keys:
            _TAPS.pop(key, None)
        self.handles, self.keys = [], []
