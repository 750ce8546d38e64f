"""Multiple-choice evaluation shared by every method: the option with the highest summed
log-likelihood given the prompt wins.

Each (item, option) row runs as two forward calls that share a KV cache, so the runtime's
position logic sees the prompt as the prompt:
  1. the prompt, left padded (an empty cache: this is the prefill; `prompt_last` steers its
     last token, whose logits give the option's first token);
  2. the option tokens, right padded, with the cache of call 1 and the 2D mask
     concat(prompt mask, option mask). They count as generated tokens, so
     `from_prompt_end` plans steer them too, as in generation.
When every option of an item is one token, call 1 alone decides: the item runs as one row
(its prompt once, not once per option) and call 2 is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from transformers import DynamicCache

from ..hooks import apply_hooks
from ..kv_cache_arg import cache_arg, output_cache
from ..plan import SteeringPlan
from ..runtime import patch
from ..tokens import batches, left_padded, right_padded
from .stats import Accuracy

Encoded = tuple[list[int], list[list[int]]]  # (prompt ids, [option ids, ...])


@dataclass
class MCResult:
    predictions: list[int]
    scores: list[list[float]]  # summed log-likelihood per item per option
    accuracy: Accuracy


def encode(tokenizer, items: Sequence[dict]) -> list[Encoded]:
    """Prompt with special tokens; each option on its own (the data gives it its leading space)."""
    out = []
    for it in items:
        prompt = tokenizer(it["prompt"], add_special_tokens=True)["input_ids"]
        options = [tokenizer(o, add_special_tokens=False)["input_ids"] for o in it["options"]]
        if not prompt or any(not o for o in options):
            raise ValueError(f"item {it.get('id', it['prompt'][:40])!r}: prompt or an option is empty")
        out.append((prompt, options))
    return out


def contrastive_pairs(items: Sequence[dict]) -> list[tuple[str, str]]:
    """(prompt + correct option, prompt + a wrong option) per item; the wrong one cycles."""
    pairs = []
    for i, it in enumerate(items):
        wrong = [j for j in range(len(it["options"])) if j != it["answer"]]
        pairs.append(
            (it["prompt"] + it["options"][it["answer"]], it["prompt"] + it["options"][wrong[i % len(wrong)]])
        )
    return pairs


@torch.no_grad()
def _prompt_call(model, prompts, pad_id: int):
    device = next(model.parameters()).device
    ids, mask, pos = left_padded(prompts, pad_id, device)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=pos,
        **cache_arg(model, DynamicCache()),
        use_cache=True,
        logits_to_keep=1,
    )
    return out, mask, torch.log_softmax(out.logits[:, -1].float(), -1)  # predicts option token 0


@torch.no_grad()
def _score_single_tokens(model, prompts, options, pad_id: int) -> list[list[float]]:
    """Every option is one token: one row per item, the prompt call alone decides."""
    _, _, first = _prompt_call(model, prompts, pad_id)
    return [[first[b, o[0]].item() for o in opts] for b, opts in enumerate(options)]


@torch.no_grad()
def _score_rows(model, prompts, options, pad_id: int) -> list[float]:
    """One row per (item, option): the prompt, then the right-padded option with its cache."""
    out, mask, first = _prompt_call(model, prompts, pad_id)
    opt, opt_mask = right_padded(options, pad_id, mask.device)
    pos = mask.sum(1, keepdim=True) + torch.arange(opt.shape[1], device=mask.device).unsqueeze(0)
    nxt = model(
        input_ids=opt,
        attention_mask=torch.cat([mask, opt_mask], 1),
        position_ids=pos,
        **cache_arg(model, output_cache(out)),
        use_cache=True,
    )
    lp = torch.log_softmax(nxt.logits[:, :-1].float(), -1)  # position t predicts t+1
    total = first.gather(1, opt[:, :1]).squeeze(1)
    tok = lp.gather(2, opt[:, 1:].unsqueeze(-1)).squeeze(-1)
    return (total + (tok * opt_mask[:, 1:]).sum(1)).tolist()


def _steering(model, plan: SteeringPlan | None, hooks: bool):
    if plan is None:
        return nullcontext()
    return apply_hooks(model, plan) if hooks else patch(model, plan)


def option_logprobs(
    model,
    encoded: Sequence[Encoded],
    plan: SteeringPlan | None = None,
    hooks: bool = False,
    pad_id: int = 0,
    batch_size: int = 32,
    progress: bool = False,
) -> list[list[float]]:
    """Summed log-likelihood of every option's tokens given its prompt, steered by `plan`
    (patched, or with the plain-hook baseline when hooks=True)."""
    scores: list[list[float]] = [[0.0] * len(opts) for _, opts in encoded]
    single = [i for i, (_, opts) in enumerate(encoded) if all(len(o) == 1 for o in opts)]
    multi = [(i, j) for i, (_, opts) in enumerate(encoded) if i not in set(single) for j in range(len(opts))]
    single.sort(key=lambda i: len(encoded[i][0]))  # similar lengths: less padding
    multi.sort(key=lambda r: len(encoded[r[0]][0]))
    with _steering(model, plan, hooks):
        for chunk in batches(single, batch_size, "items", progress):
            got = _score_single_tokens(
                model, [encoded[i][0] for i in chunk], [encoded[i][1] for i in chunk], pad_id
            )
            for i, v in zip(chunk, got):
                scores[i] = v
        for chunk in batches(multi, batch_size, "options", progress):
            got = _score_rows(
                model, [encoded[i][0] for i, _ in chunk], [encoded[i][1][j] for i, j in chunk], pad_id
            )
            for (i, j), v in zip(chunk, got):
                scores[i][j] = v
    return scores


def accuracy_of(scores: Sequence[Sequence[float]], answers: Sequence[int]) -> tuple[list[int], Accuracy]:
    preds = [max(range(len(s)), key=s.__getitem__) for s in scores]
    return preds, Accuracy(sum(p == a for p, a in zip(preds, answers)), len(answers))


def evaluate(
    model,
    tokenizer,
    items: Sequence[dict],
    plan: SteeringPlan | None = None,
    hooks: bool = False,
    batch_size: int = 32,
    progress: bool = False,
    encoded: Sequence[Encoded] | None = None,
) -> MCResult:
    """Accuracy of `model` (steered by `plan`, or not) on MC items {prompt, options, answer}.

    Pass `encoded` (from `encode`) to skip re-tokenising in sweeps.
    """
    if not items:
        raise ValueError("no items to evaluate")
    encoded = encoded if encoded is not None else encode(tokenizer, items)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    scores = option_logprobs(model, encoded, plan, hooks, pad, batch_size, progress)
    preds, acc = accuracy_of(scores, [it["answer"] for it in items])
    return MCResult(preds, scores, acc)


__all__ = ["MCResult", "encode", "contrastive_pairs", "option_logprobs", "accuracy_of", "evaluate"]
