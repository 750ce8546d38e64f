"""Monitors in generate / stream (steered_generation.py): which row reads which monitor,
the readings cut to each row's generated tokens, and the streamer that yields them.

    texts, readings = generate(model, tok, prompts, monitors=[m], return_monitors=True)
    readings[i][m.name]  # one float per generated token of row i

`monitors` is a list of Monitors (every row reads them) or one list per prompt (None or []
for a row that reads none).
"""

from __future__ import annotations

import queue

import torch
from transformers.generation.streamers import BaseStreamer

from .errors import SteeringError
from .monitor import Monitor, check_names

# generate options whose forwards do not produce one token per row from the last position
_REFUSED = ("assistant_model", "prompt_lookup_num_tokens", "assistant_early_exit")


def row_monitors(monitors, n_prompts: int) -> list[list[Monitor]]:
    """One list of monitors per prompt."""
    if monitors is None:
        return [[] for _ in range(n_prompts)]
    if isinstance(monitors, Monitor) or not isinstance(monitors, (list, tuple)):
        raise SteeringError(
            f"monitors must be a list of Monitors or one list per prompt, got a bare "
            f"{type(monitors).__name__}; write monitors=[...]"
        )
    if all(isinstance(m, Monitor) for m in monitors):
        check_names(monitors)
        return [list(monitors) for _ in range(n_prompts)]
    if len(monitors) != n_prompts:
        raise SteeringError(
            f"monitors per prompt: {n_prompts} prompts but {len(monitors)} entries (or pass one "
            "list of Monitors for every prompt)"
        )
    rows = []
    for i, row in enumerate(monitors):
        row = [] if row is None else row
        if isinstance(row, Monitor) or not isinstance(row, (list, tuple)):
            raise SteeringError(f"monitors[{i}] must be a list of Monitors or None, got {type(row).__name__}")
        check_names(row, f"monitors[{i}]")
        rows.append(list(row))
    return rows


def union(rows: list[list[Monitor]]) -> list[Monitor]:
    """Every distinct monitor of the call once (by identity; one name = one monitor)."""
    seen: dict[str, Monitor] = {}
    for row in rows:
        for m in row:
            other = seen.setdefault(m.name, m)
            if other is not m and not (
                other.layer == m.layer and other.bias == m.bias and torch.equal(other.vector, m.vector)
            ):
                raise SteeringError(f"two different monitors are called {m.name!r} in one call")
    return list(seen.values())


def check_options(model, gen_kwargs: dict) -> None:
    config = gen_kwargs.get("generation_config") or getattr(model, "generation_config", None)
    beams = gen_kwargs.get("num_beams") or getattr(config, "num_beams", 1) or 1
    if int(beams) > 1:
        raise SteeringError(
            "monitors with beam search are not supported (beams reorder rows between forwards); "
            "use greedy or sampling"
        )
    for name in _REFUSED:
        if gen_kwargs.get(name) is not None:
            raise SteeringError(
                f"monitors with {name}= are not supported (it forwards several tokens per step)"
            )


def eos_ids(model, gen_kwargs: dict) -> set[int]:
    config = gen_kwargs.get("generation_config") or getattr(model, "generation_config", None)
    eos = gen_kwargs.get("eos_token_id", getattr(config, "eos_token_id", None))
    if eos is None:
        return set()
    return {int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])}


def generated_lengths(new_ids: torch.Tensor, eos: set[int]) -> list[int]:
    """Per row: its generated tokens up to and including its first end-of-sequence token."""
    lengths = []
    for row in new_ids.tolist():
        hit = [j for j, t in enumerate(row) if t in eos]
        lengths.append(hit[0] + 1 if hit else len(row))
    return lengths


def per_row(values: torch.Tensor, names: list[str], rows: list[list[Monitor]], lengths: list[int]):
    """[{name: [float per generated token]}] from the (steps, rows, K) host readings."""
    col = {n: k for k, n in enumerate(names)}
    out = []
    for i, (row, n) in enumerate(zip(rows, lengths)):
        out.append({m.name: values[:n, i, col[m.name]].tolist() for m in row})
    return out


class MonitorStreamer(BaseStreamer):
    """Yields (text piece, {name: [readings of the piece's tokens]}) for one prompt.

    A piece is the text decoded so far minus what was yielded; tokens whose text is not
    complete yet (a split UTF-8 character) wait for the next piece with their readings.
    Joined, the pieces give generate's text and the readings generate's readings.
    """

    def __init__(self, tokenizer, names: list[str], timeout: float | None = None):
        self.tokenizer, self.names, self.timeout = tokenizer, names, timeout
        self.reader = None
        self.queue: queue.Queue = queue.Queue()
        self._prompt_seen = False
        self._ids: list[int] = []
        self._text = ""
        self._pending: list[list[float]] = []

    def put(self, value) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        ids = value.reshape(-1).tolist()
        if len(ids) != 1:
            raise SteeringError("the monitor streamer takes one prompt")
        self._ids.append(ids[0])
        self._pending.append(self.reader.step(len(self._ids) - 1)[0].tolist())
        text = self.tokenizer.decode(self._ids, skip_special_tokens=True)
        if not text.endswith("\ufffd"):
            self._emit(text)

    def _emit(self, text: str) -> None:
        piece = text[len(self._text) :] if text.startswith(self._text) else text
        readings = {n: [r[k] for r in self._pending] for k, n in enumerate(self.names)}
        self.queue.put((piece, readings))
        self._text, self._pending = text, []

    def end(self) -> None:
        if self._pending:
            self._emit(self.tokenizer.decode(self._ids, skip_special_tokens=True))
        self.queue.put(None)

    def __iter__(self):
        while True:
            item = self.queue.get(timeout=self.timeout)
            if item is None:
                return
            yield item
