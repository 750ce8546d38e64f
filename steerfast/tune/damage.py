"""Damage: how much a plan breaks the model away from what it is for.

- KL and perplexity ratio on shipped neutral text (steerfast/data/neutral_text.jsonl, ~1.9k
  tokens of plain descriptive prose). The text is cut into windows of `window` tokens; the
  first `prompt` tokens of each window are its prompt (steered as the plan steers a prompt:
  ActAdd's prefix, SADI's last token, CAA's last token), the rest stand for generated tokens
  (steered where the plan steers generation: `from_prompt_end` / `all`). Per window: the mean
  over its scored tokens of KL(P_unsteered || P_steered) of the next-token distribution, and
  of log p_unsteered(token) - log p_steered(token) (exp of its mean is the perplexity ratio).
  `NeutralText.measure` runs the unsteered reference pass of each batch of windows ONCE and
  every cell of the grid against it (the loop over cells is inside the loop over windows).
- degeneration of greedy completions: per completion, the rate of repeated word 3-grams
  (1 - distinct / total), paired against the unsteered completion of the same prompt; and its
  tail, per prompt: whether the completion loops (repeats some word 3-gram more than twice),
  paired the same way, so that one looping completion in 50 counts 1/50 instead of vanishing
  in a mean rate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from contextlib import nullcontext

import torch
from torch import Tensor
from transformers import DynamicCache

from ..data import load_jsonl
from ..kv_cache_arg import cache_arg
from ..plan import SteeringPlan
from ..runtime import patch

GENERATION = ("from_prompt_end", "all")


def neutral_text() -> list[str]:
    return [r["text"] for r in load_jsonl("neutral_text")]


def _generation_part(plan: SteeringPlan) -> SteeringPlan | None:
    ivs = [iv for iv in plan.interventions if iv.positions in GENERATION]
    if not ivs:
        return None
    return SteeringPlan(ivs, plan.method, plan.model, plan.meta).with_positions("all")


def prompt_tokens_needed(plan: SteeringPlan) -> int:
    need = 1
    for iv in plan.interventions:
        if iv.positions.startswith("prefix:"):
            need = max(need, int(iv.positions.split(":")[1]))
    return need


class NeutralText:
    def __init__(self, tokenizer, texts: Sequence[str] | None = None, window: int = 64, prompt: int = 8):
        texts = neutral_text() if texts is None else list(texts)
        ids: list[int] = []
        for t in texts:
            ids += tokenizer(" " + t.strip(), add_special_tokens=False)["input_ids"]
        n = len(ids) // window
        if n < 2 or prompt >= window:
            raise ValueError(f"neutral text of {len(ids)} tokens is too short for windows of {window}")
        self.windows = torch.tensor(ids[: n * window]).view(n, window)
        self.prompt = prompt
        self.tokens = n * (window - prompt)

    @torch.no_grad()
    def _steered_logprobs(self, model, ids: Tensor, plan: SteeringPlan) -> Tensor:
        k = self.prompt
        cache = DynamicCache()
        with patch(model, plan):
            a = model(input_ids=ids[:, :k], **cache_arg(model, cache), use_cache=True).logits[:, -1:]
        gen = _generation_part(plan)
        with patch(model, gen) if gen is not None else nullcontext():
            c = model(input_ids=ids[:, k:-1], **cache_arg(model, cache), use_cache=True).logits
        return torch.log_softmax(torch.cat([a, c], 1).float(), -1)

    @torch.no_grad()
    def measure(self, model, plans: dict, batch_size: int = 8, progress=None) -> dict:
        """{cell: {"kl": [per window], "nll": [per window]}} for every plan of `plans`."""
        for plan in plans.values():
            if prompt_tokens_needed(plan) > self.prompt:
                raise ValueError(
                    f"a plan steers {prompt_tokens_needed(plan)} prompt tokens; windows give {self.prompt}"
                )
        device = next(model.parameters()).device
        out = {cell: {"kl": [], "nll": []} for cell in plans}
        k = self.prompt
        for s in range(0, len(self.windows), batch_size):
            ids = self.windows[s : s + batch_size].to(device)
            ref = torch.log_softmax(model(input_ids=ids[:, :-1]).logits[:, k - 1 :].float(), -1)
            target = ids[:, k:].unsqueeze(-1)
            ref_tok = ref.gather(-1, target).squeeze(-1)
            for cell, plan in plans.items():
                lp = self._steered_logprobs(model, ids, plan)
                kl = (ref.exp() * (ref - lp)).sum(-1).mean(1)
                dnll = (ref_tok - lp.gather(-1, target).squeeze(-1)).mean(1)
                out[cell]["kl"] += kl.tolist()
                out[cell]["nll"] += dnll.tolist()
            if progress:
                progress(min(s + batch_size, len(self.windows)), len(self.windows))
        return out


def _ngrams(text: str, n: int) -> list[tuple[str, ...]]:
    words = text.lower().split()
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def repeated_ngram_rate(text: str, n: int = 3) -> float:
    grams = _ngrams(text, n)
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def max_ngram_count(text: str, n: int = 3) -> int:
    """How often the most repeated word n-gram of `text` occurs (0 for fewer than n words)."""
    grams = _ngrams(text, n)
    return max(Counter(grams).values()) if grams else 0


LOOP_REPEATS = 2  # a completion loops when some word 3-gram occurs more than this many times


def loops(text: str, n: int = 3) -> bool:
    return max_ngram_count(text, n) > LOOP_REPEATS
