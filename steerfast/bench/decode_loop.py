"""Greedy decode steps timed side by side: the loop the decode benches share.

    step = GreedySteps(model, prompt, reset_every=48)   # prefills `prompt` into its own cache
    times = decode_rounds({"a": step_a, "b": step_b}, rounds=600)
    print(ratio_line("b", "a", times))

Each step feeds the previous step's greedy token; after `reset_every` steps the cache is
re-prefilled, so every round decodes at a sequence length the other cases also reach.
`decode_rounds` is `timing.interleaved` in a rotating order after five untimed steps, on the
thread's CPU clock (one torch thread: all of the forward) or, on CUDA, the wall clock around a
synchronised step.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch
from transformers import DynamicCache

from ..kv_cache_arg import cache_arg
from ..timing import interleaved, quantile


class GreedySteps:
    """Calling it runs one greedy decode step of `model` on its own KV cache (prefilled with
    `prompt` at construction and again every `reset_every` steps, after `on_reset()`)."""

    def __init__(self, model, prompt: torch.Tensor, reset_every: int | None = None, on_reset=None):
        self.model, self.prompt, self.reset_every, self.on_reset = model, prompt, reset_every, on_reset
        self.reset()

    def reset(self) -> None:
        if self.on_reset is not None:
            self.on_reset()
        self.kv = cache_arg(self.model, DynamicCache(config=self.model.config))
        out = self.model(input_ids=self.prompt, **self.kv, use_cache=True, logits_to_keep=1)
        self.prefill_logits = out.logits[:, -1]
        self.next, self.n = out.logits[:, -1:].argmax(-1), 0

    def __call__(self) -> None:
        if self.reset_every is not None and self.n >= self.reset_every:
            self.reset()
        out = self.model(input_ids=self.next, **self.kv, use_cache=True)
        self.next, self.n = out.logits[:, -1:].argmax(-1), self.n + 1


def decode_rounds(steps: dict[str, Callable[[], None]], rounds: int, before=None, cuda: bool = False) -> dict:
    """Per-step seconds of every case, round by round ({name: [s, ...]})."""
    if cuda:
        cases = {name: (lambda fn=fn: (fn(), torch.cuda.synchronize())) for name, fn in steps.items()}

        def sync_before(name):
            if before is not None:
                before(name)
            torch.cuda.synchronize()

        got = interleaved(cases, rounds=rounds, warmup=5, before=sync_before, rotate=True, clock="wall")
    else:
        got = interleaved(steps, rounds=rounds, warmup=5, before=before, rotate=True, clock="cpu")
    return {name: res["samples"] for name, res in got.items()}


def ratio_line(case: str, ref: str, times: dict) -> str:
    """The median of per-round ratios case / ref, with its quartiles."""
    ratios = [a / b for a, b in zip(times[case], times[ref]) if b > 0]
    med = statistics.median(ratios)
    return f"{case:22s} / {ref:10s} {med:.4f}  (p25 {quantile(ratios, 0.25):.4f}, p75 {quantile(ratios, 0.75):.4f})"
