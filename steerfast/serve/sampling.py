"""Per-request next-token choice for one engine step (docs/serving.md, "Engine").

Semantics: row i of `logits` (n, V) fp32 is request i's raw (steered) next-token logits.
- greedy (temperature 0, or top_k 1): argmax of the raw logits.
- sampled: logits / temperature, then top_k (keep the k largest), then top_p (keep the smallest
  set of the most likely tokens whose probability reaches top_p; the first always kept), then
  one draw by Gumbel-max: argmax(masked + g) with g ~ Gumbel(0, 1) from a generator seeded by
  (request seed, step). That is an exact draw from softmax(masked), and it depends only on
  the row's own logits, seed and step: what else is in the batch cannot change the draw
  (only the logits can, by float rounding of a different packing).
- logprobs: log_softmax of the *raw* logits (before temperature / top-k / top-p, as vLLM
  reports them): the chosen token's value and the `top` best (id, value), best first.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .params import SamplingParams

_MASK64 = (1 << 64) - 1


def step_seed(seed: int, step: int) -> int:
    """splitmix64 of (seed, step): neighbouring steps and seeds get unrelated streams."""
    z = (int(seed) * 0x9E3779B97F4A7C15 + int(step) + 1) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) & ((1 << 63) - 1)


def gumbel(n: int, seed: int, step: int) -> Tensor:
    """(n,) Gumbel(0, 1) noise, drawn on the CPU so that every device gives the same numbers."""
    g = torch.Generator(device="cpu").manual_seed(step_seed(seed, step))
    u = torch.rand(n, generator=g, dtype=torch.float64).clamp_(min=1e-300, max=1 - 1e-16)
    return (-torch.log(-torch.log(u))).to(torch.float32)


def masked_logits(row: Tensor, p: SamplingParams) -> Tensor:
    """The row scaled by temperature with top_k / top_p applied (-inf outside)."""
    x = row / float(p.temperature)
    if p.top_k and p.top_k < x.shape[-1]:
        kth = torch.topk(x, p.top_k).values[-1]
        x = torch.where(x < kth, float("-inf"), x)
    if p.top_p < 1.0:
        sorted_x, order = torch.sort(x, descending=True)
        probs = torch.softmax(sorted_x, dim=-1)
        before = torch.cumsum(probs, dim=-1) - probs  # mass of the strictly better tokens
        drop_sorted = before >= p.top_p
        drop_sorted[0] = False
        drop = torch.zeros_like(drop_sorted).scatter_(0, order, drop_sorted)
        x = torch.where(drop, float("-inf"), x)
    return x


@dataclass
class Choice:
    token: int
    logprob: float | None = None
    top: list[tuple[int, float]] | None = None


def choose(
    logits: Tensor, params: list[SamplingParams | None], seeds: list[int], steps: list[int]
) -> list[Choice]:
    """One Choice per row; params None = greedy without logprobs (a request not ours, e.g. warmup)."""
    out = []
    logits = logits.float()
    want_lp = any(p is not None and p.logprobs is not None for p in params)
    logp = torch.log_softmax(logits, dim=-1) if want_lp else None
    for i, p in enumerate(params):
        row = logits[i]
        if p is None or p.greedy:
            token = int(torch.argmax(row))
        else:
            x = masked_logits(row, p)
            token = int(torch.argmax(x + gumbel(x.shape[-1], seeds[i], steps[i]).to(x.device)))
        c = Choice(token)
        if p is not None and p.logprobs is not None:
            c.logprob = float(logp[i, token])
            if p.logprobs > 0:
                v, ix = torch.topk(logp[i], p.logprobs)
                c.top = [(int(t), float(x)) for t, x in zip(ix.tolist(), v.tolist())]
        out.append(c)
    return out
