"""A monitor (steerfast/monitor.py) from contrast pairs: the mean difference, read like CAA.

The pairs are shuffled (seeded) and split into train / dev / test. For every candidate layer,
each text's residual stream entering the layer at its last token (what the runtime reads at a
producing position) gives, on the train split,

    v = unit(mean(h[positive]) - mean(h[negative])),   bias = -(mean v·h⁺ + mean v·h⁻) / 2

so a reading above 0 leans positive. The layer with the best dev accuracy wins (ties: the
larger standardised gap of the dev readings); the test split only reports held-out accuracy
(a pair's text is classified right when positive reads > 0 and negative reads <= 0).

    fit = monitor(model, tok, sentiment_pairs(), name="sentiment")
    fit.monitor, fit.report()
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..adapters import get_adapter
from ..errors import PlanError
from ..monitor import Monitor
from .checks import check_batch_size, check_layers, check_pairs
from .condition import prompt_states


@dataclass
class MonitorFit:
    monitor: Monitor
    dev_accuracy: float
    test_accuracy: float | None
    per_layer: dict[int, float]  # dev accuracy of every candidate layer
    sizes: tuple[int, int, int]  # pairs in train, dev, test

    def report(self) -> dict:
        return {
            "name": self.monitor.name,
            "layer": self.monitor.layer,
            "bias": self.monitor.bias,
            "dev_accuracy": self.dev_accuracy,
            "test_accuracy": self.test_accuracy,
            "pairs": dict(zip(("train", "dev", "test"), self.sizes)),
        }


def _accuracy(v: Tensor, bias: float, pos: Tensor, neg: Tensor) -> float:
    hits = ((pos @ v + bias) > 0).sum() + ((neg @ v + bias) <= 0).sum()
    return float(hits) / (len(pos) + len(neg))


def _gap(v: Tensor, pos: Tensor, neg: Tensor) -> float:
    sp, sn = pos @ v, neg @ v
    spread = torch.cat([sp - sp.mean(), sn - sn.mean()]).std().clamp(min=1e-12)
    return float((sp.mean() - sn.mean()) / spread)


def _split(n: int, seed: int, fractions: tuple[float, float]) -> tuple[list[int], list[int], list[int]]:
    idx = list(range(n))
    random.Random(seed).shuffle(idx)
    n_dev, n_test = max(1, round(n * fractions[0])), round(n * fractions[1])
    return idx[n_dev + n_test :], idx[:n_dev], idx[n_dev : n_dev + n_test]


def monitor(
    model,
    tokenizer,
    pairs: Sequence[tuple[str, str]],
    name: str = "concept",
    layers: Sequence[int] | None = None,
    dev: float = 0.2,
    test: float = 0.2,
    seed: int = 0,
    batch_size: int = 16,
) -> MonitorFit:
    pairs = check_pairs(pairs, "monitor", "(positive, negative) pair")
    check_batch_size(batch_size)
    for value, what in ((dev, "dev"), (test, "test")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise PlanError(f"{what} must be a fraction in [0, 1), got {value!r}")
    if dev + test >= 0.9 or len(pairs) < 4:
        raise PlanError(f"need >= 4 pairs and dev + test < 0.9 (got {len(pairs)} pairs, {dev} + {test})")
    n_layers = get_adapter(model).num_layers(model)
    layers = list(range(n_layers)) if layers is None else check_layers(layers, n_layers, "monitor")
    train, dev_i, test_i = _split(len(pairs), seed, (dev, test))
    pos = prompt_states(model, tokenizer, [p for p, _ in pairs], layers, batch_size)
    neg = prompt_states(model, tokenizer, [n for _, n in pairs], layers, batch_size)
    best, per_layer = None, {}
    for layer in layers:
        hp, hn = pos[(layer, "last")].double(), neg[(layer, "last")].double()
        v = hp[train].mean(0) - hn[train].mean(0)
        v = v / v.norm()
        bias = -float((hp[train] @ v).mean() + (hn[train] @ v).mean()) / 2
        acc = _accuracy(v, bias, hp[dev_i], hn[dev_i])
        per_layer[layer] = acc
        key = (acc, _gap(v, hp[dev_i], hn[dev_i]))
        if best is None or key > best[0]:
            best = (key, layer, v, bias)
    (acc, _), layer, v, bias = best
    hp, hn = pos[(layer, "last")].double(), neg[(layer, "last")].double()
    test_acc = _accuracy(v, bias, hp[test_i], hn[test_i]) if test_i else None
    meta = {"recipe": "monitor", "pairs": len(pairs), "dev_accuracy": acc, "test_accuracy": test_acc}
    mon = Monitor(layer, v.float(), name, bias, meta)
    return MonitorFit(mon, acc, test_acc, per_layer, (len(train), len(dev_i), len(test_i)))


__all__ = ["monitor", "MonitorFit"]
