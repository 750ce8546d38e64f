"""A condition from two prompt sets (CAST-like): steer only prompts like the first set.

For every candidate layer l and aggregation (mean over the prompt, or its last token), the
prompts' residual stream entering l is reduced to one vector per prompt (the same reduction
the runtime's gate applies, steerfast/runtime/gates.py). On the train split:

    c_l = normalise(mean(h[steer prompts]) - mean(h[other prompts]))

On the dev split the threshold τ is the midpoint between sorted dev scores c_l·h that
classifies the dev prompts best (comparator '>': steer prompts score higher), and the
(layer, aggregation) with the best dev accuracy wins (ties: the larger standardised gap
between the two sets' dev scores). Held-out prompts, if given, only report accuracy.

    fit = condition(model, tok, food, other, test=(food_test, other_test))
    plan = caa(model, tok, sentiment_pairs, layer=8).when(fit.condition)
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..adapters import get_adapter
from ..conditions import AGGREGATIONS, Condition
from ..errors import PlanError
from ..tokens import batches, left_padded, tokenize_texts
from .capture import residual_input
from .checks import check_batch_size, check_layers


@torch.no_grad()
def prompt_states(
    model, tokenizer, texts: Sequence[str], layers: Sequence[int], batch_size: int = 16
) -> dict[tuple[int, str], Tensor]:
    """{(layer, "mean" | "last"): (N, D) fp32}: each prompt's residual stream entering the
    layer, averaged over its real tokens or at its last token."""
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rows = tokenize_texts(tokenizer, texts)
    out: dict[tuple[int, str], list[Tensor]] = {(lay, a): [] for lay in layers for a in AGGREGATIONS}
    with ExitStack() as stack:
        seen = {lay: stack.enter_context(residual_input(model, lay)) for lay in layers}
        for chunk in batches(rows, batch_size, "condition", progress=False):
            ids, mask, pos = left_padded(chunk, pad, device)
            for s in seen.values():
                s.clear()
            model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False)
            w = mask.to(torch.float32).unsqueeze(-1)
            for lay, s in seen.items():
                h = s[0].float()
                out[(lay, "mean")].append((h * w).sum(1) / w.sum(1))
                out[(lay, "last")].append(h[:, -1])
    return {k: torch.cat(v).cpu() for k, v in out.items()}


def best_threshold(pos: Tensor, neg: Tensor) -> tuple[float, float]:
    """(threshold, accuracy) of `score > threshold` separating pos from neg, the midpoint
    of the best run of candidate cuts."""
    scores = torch.cat([pos, neg]).double()
    labels = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))]).bool()
    s = scores.sort().values
    cuts = torch.cat([s[:1] - 1.0, (s[1:] + s[:-1]) / 2, s[-1:] + 1.0])
    acc = torch.stack([((scores > c) == labels).double().mean() for c in cuts])
    best = acc.max()
    idx = (acc == best).nonzero().flatten()
    mid = idx[len(idx) // 2]
    return float(cuts[mid]), float(best)


def accuracy(cond: Condition, pos: Tensor, neg: Tensor) -> float:
    sp, sn = pos @ cond.vector, neg @ cond.vector
    hits = (sp > cond.threshold).sum() + (sn <= cond.threshold).sum()
    return float(hits) / (len(sp) + len(sn))


@dataclass
class ConditionFit:
    condition: Condition
    dev_accuracy: float
    test_accuracy: float | None
    per_candidate: dict = field(default_factory=dict)  # "layer/agg" -> dev accuracy
    sizes: dict = field(default_factory=dict)

    def report(self) -> dict:
        c = self.condition
        return {
            "layer": c.layer,
            "aggregate": c.aggregate,
            "threshold": c.threshold,
            "dev_accuracy": self.dev_accuracy,
            "test_accuracy": self.test_accuracy,
            "per_candidate": self.per_candidate,
            "sizes": self.sizes,
        }


def _texts(x, name) -> list[str]:
    if isinstance(x, str) or not isinstance(x, Sequence) or not x or not all(isinstance(t, str) for t in x):
        raise PlanError(f"{name} must be a non-empty list of prompt strings, got {x!r:.80}")
    return list(x)


def _split(texts: list[str], fraction: float, rng) -> tuple[list[str], list[str]]:
    idx = list(range(len(texts)))
    rng.shuffle(idx)
    k = max(1, round(len(texts) * fraction))
    if len(texts) - k < 1:
        raise PlanError(f"need at least 2 prompts per set to split off a dev part, got {len(texts)}")
    return [texts[i] for i in idx[k:]], [texts[i] for i in idx[:k]]


def condition(
    model,
    tokenizer,
    steer_prompts: Sequence[str],
    other_prompts: Sequence[str],
    layers: Sequence[int] | None = None,
    aggregates: Sequence[str] = AGGREGATIONS,
    dev: tuple[Sequence[str], Sequence[str]] | None = None,
    dev_fraction: float = 0.3,
    test: tuple[Sequence[str], Sequence[str]] | None = None,
    seed: int = 0,
    batch_size: int = 16,
) -> ConditionFit:
    """Fit a Condition that is on for prompts like `steer_prompts`, off for `other_prompts`.

    layers: candidate layers (default every layer; a gated intervention must be at a layer
    >= the chosen one, so pass `range(k + 1)` to gate interventions at layer k).
    dev: (steer, other) dev prompts; default a `dev_fraction` split of the given prompts.
    test: (steer, other) held-out prompts, only to report the gate's accuracy.
    """
    check_batch_size(batch_size)
    pos, neg = _texts(steer_prompts, "steer_prompts"), _texts(other_prompts, "other_prompts")
    n_layers = get_adapter(model).num_layers(model)
    layers = list(range(n_layers)) if layers is None else check_layers(layers, n_layers, "condition")
    bad = [a for a in aggregates if a not in AGGREGATIONS]
    if bad or not aggregates:
        raise PlanError(f"aggregates must be a subset of {AGGREGATIONS}, got {list(aggregates)!r}")
    if not 0 < dev_fraction < 1:
        raise PlanError(f"dev_fraction must be in (0, 1), got {dev_fraction!r}")
    rng = random.Random(seed)
    if dev is None:
        (pos, dpos), (neg, dneg) = _split(pos, dev_fraction, rng), _split(neg, dev_fraction, rng)
    else:
        dpos, dneg = _texts(dev[0], "dev[0]"), _texts(dev[1], "dev[1]")
    sets = {"train+": pos, "train-": neg, "dev+": dpos, "dev-": dneg}
    if test is not None:
        sets["test+"], sets["test-"] = _texts(test[0], "test[0]"), _texts(test[1], "test[1]")
    states = {k: prompt_states(model, tokenizer, v, layers, batch_size) for k, v in sets.items()}
    best, per = None, {}
    for lay in layers:
        for agg in aggregates:
            key = (lay, agg)
            direction = states["train+"][key].mean(0) - states["train-"][key].mean(0)
            if float(direction.norm()) == 0.0:
                continue
            c = direction / direction.norm()
            sp, sn = states["dev+"][key] @ c, states["dev-"][key] @ c
            tau, acc = best_threshold(sp, sn)
            gap = float((sp.mean() - sn.mean()) / (torch.cat([sp - sp.mean(), sn - sn.mean()]).std() + 1e-12))
            per[f"{lay}/{agg}"] = acc
            if best is None or (acc, gap) > best[0]:
                best = ((acc, gap), Condition(lay, c, tau, ">", agg))
    if best is None:
        raise PlanError("the two prompt sets give identical mean activations at every candidate layer")
    cond = best[1]
    key = (cond.layer, cond.aggregate)
    test_acc = accuracy(cond, states["test+"][key], states["test-"][key]) if test is not None else None
    sizes = {k: len(v) for k, v in sets.items()}
    return ConditionFit(cond, best[0][0], test_acc, per, sizes)


__all__ = ["condition", "ConditionFit", "prompt_states", "best_threshold"]
