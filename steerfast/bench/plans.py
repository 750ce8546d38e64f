"""The steering configurations the benchmark measures, as SteeringPlans.

    1layer    one additive vector on mlp.out of the middle layer, every position
              (= the residual stream entering the next layer; what CAA/ActAdd do)
    all-add   one additive vector on mlp.out of every layer, every position
    all-sadi  per layer, two prologue and two epilogue sites:
                attn.heads  scale, 2 whole heads masked, delta 2.0, positions "last"
                attn.out    add,   one vector,                      positions "all"
                mlp.neurons scale, 32 neurons masked,  delta 2.0,   positions "last"
                mlp.out     add,   one vector,                      positions "all"
              (SADI-Head + SADI-Neuron scaling at the steered token, plus additive biases:
               the worst case of the design's four sites, every layer)
    all-ablate  one random unit direction ablated (alpha 1) at every residual site: embed.out,
              attn.out and mlp.out of every layer, every position (SteeringPlan.ablate_everywhere)
    cond-add  (one group only) one additive vector on mlp.out of every layer (as all-add, but from
              the prompt's end on: a gated intervention may not steer prompt tokens before the
              gate is known), gated by a condition on the residual stream entering layer 0 (the
              prompt's last token), whose threshold is the median score of the benchmark's
              decode prompt (inputs.prompt_ids(seed=2)): at batch 8, 4 rows are gated in, 4 out.
              The bank's slot s uses seed s: a different condition (vector and threshold) per slot.

`mixed_plans(model, n)` gives n distinct per-request configurations (the bank and serving
benchmarks). This module is the one plan factory of benchmarks; `random_plan(model)` (one plan
touching every site kind under chosen position policies, the tests' workhorse) lives in
steerfast/testing.py, below both, and is re-exported here.

Vectors are random (seeded, small norm): values do not change the cost, and the same
vectors go to every variant, so the logits can be compared between them.
"""

from __future__ import annotations

import torch

from ..adapters import get_adapter, head_layout
from ..conditions import Condition
from ..plan import Intervention, SteeringPlan, model_hint
from ..recipes.capture import residual_input
from ..testing import random_plan
from .inputs import DECODE_PROMPT, prompt_ids

SITE_CONFIGS = ("1layer", "all-add", "all-sadi", "all-ablate")
EXTRA_CONFIGS = ("cond-add",)  # cells of one group only (conditional_plan)
SADI_HEADS = 2
SADI_NEURONS = 32
SADI_DELTA = 2.0
ADD_SCALE = 0.05


def _vec(gen: torch.Generator, dim: int) -> torch.Tensor:
    return torch.randn(dim, generator=gen) * ADD_SCALE


def middle_layer(model) -> int:
    return get_adapter(model).num_layers(model) // 2


def additive_layers(model, sites: str) -> list[int]:
    n = get_adapter(model).num_layers(model)
    return [middle_layer(model)] if sites == "1layer" else list(range(n))


def additive_vectors(model, sites: str, seed: int = 0) -> dict[int, torch.Tensor]:
    """{layer: vector} of the additive configs (1layer, all-add): added to mlp.out of layer."""
    gen = torch.Generator().manual_seed(seed)
    d = model.config.hidden_size
    return {layer: _vec(gen, d) for layer in additive_layers(model, sites)}


COND_BATCH = 8  # the decode batch whose prompts set cond-add's threshold


def conditional_plan(model, seed: int = 0) -> SteeringPlan:
    """The cond-add config (module docstring): all-add from the prompt's end, gated per row."""
    ivs = [
        Intervention(layer, "mlp.out", "add", v, "from_prompt_end", 1.0)
        for layer, v in additive_vectors(model, "all-add", seed).items()
    ]
    gen = torch.Generator().manual_seed(1000 + seed)
    c = torch.randn(model.config.hidden_size, generator=gen)
    c = c / c.norm()
    ids = prompt_ids(model, COND_BATCH, DECODE_PROMPT, seed=2)
    with torch.no_grad(), residual_input(model, 0) as seen:
        model(input_ids=ids, use_cache=False)
    scores = (seen[0][:, -1].float() @ c).sort().values
    threshold = float((scores[COND_BATCH // 2 - 1] + scores[COND_BATCH // 2]) / 2)
    cond = Condition(0, c, threshold, ">", "last")
    return SteeringPlan(ivs, "bench-cond-add", model_hint(model)).when(cond)


def build_plan(model, sites: str, seed: int = 0) -> SteeringPlan:
    if sites == "cond-add":
        return conditional_plan(model, seed)
    if sites not in SITE_CONFIGS:
        raise ValueError(f"unknown site config {sites!r}; expected one of {SITE_CONFIGS}")
    if sites in ("1layer", "all-add"):
        ivs = [
            Intervention(layer, "mlp.out", "add", v, "all", 1.0)
            for layer, v in additive_vectors(model, sites, seed).items()
        ]
        return SteeringPlan(ivs, f"bench-{sites}", model_hint(model))
    gen = torch.Generator().manual_seed(seed)
    if sites == "all-ablate":
        plan = SteeringPlan.ablate_everywhere(model, torch.randn(model.config.hidden_size, generator=gen))
        plan.method = "bench-all-ablate"
        return plan
    adapter = get_adapter(model)
    heads, head_dim = head_layout(model)
    d = model.config.hidden_size
    ivs = []
    for layer in range(adapter.num_layers(model)):
        inter = adapter.site_dim(model, layer, "mlp.neurons")
        head_mask = torch.zeros(heads * head_dim)
        for h in torch.randperm(heads, generator=gen)[:SADI_HEADS].tolist():
            head_mask[h * head_dim : (h + 1) * head_dim] = 1.0
        neuron_mask = torch.zeros(inter)
        neuron_mask[torch.randperm(inter, generator=gen)[:SADI_NEURONS]] = 1.0
        ivs += [
            Intervention(layer, "attn.heads", "scale", head_mask, "last", SADI_DELTA),
            Intervention(layer, "attn.out", "add", _vec(gen, d), "all", 1.0),
            Intervention(layer, "mlp.neurons", "scale", neuron_mask, "last", SADI_DELTA),
            Intervention(layer, "mlp.out", "add", _vec(gen, d), "all", 1.0),
        ]
    return SteeringPlan(ivs, "bench-all-sadi", model_hint(model))


def site_count(plan: SteeringPlan) -> int:
    return len(plan.interventions)


def mixed_plans(model, n: int, seed: int = 0) -> list[SteeringPlan]:
    """`n` distinct configurations of realistic shapes, cycling CAA (one mlp.out add,
    from_prompt_end), ActAdd (a 4-row prefix add), SADI (heads + neurons scaled at the prompt's
    last token, every third layer) and LAAI (an attn.out bias at the prompt's last token, every
    layer): what the bank and the server hold, one per request."""
    g = torch.Generator().manual_seed(seed)
    adapter = get_adapter(model)
    h = model.config.hidden_size
    L = adapter.num_layers(model)
    heads, head_dim = head_layout(model)
    vec = lambda *s: torch.randn(*s, generator=g) * 0.5  # noqa: E731
    mask = lambda d, k: torch.zeros(d).index_fill_(0, torch.randperm(d, generator=g)[: min(k, d)], 1.0)  # noqa: E731
    spread = max(1, L - 8)
    plans = []
    for i in range(n):
        kind, off = i % 4, (i // 4) % spread
        if kind == 0:
            ivs = [Intervention(min(2 + off, L - 1), "mlp.out", "add", vec(h), "from_prompt_end", 4.0)]
        elif kind == 1:
            ivs = [Intervention(min(3 + off, L - 1), "mlp.out", "add", vec(4, h), "prefix:4", 5.0)]
        elif kind == 2:
            ivs = [
                Intervention(l, "attn.heads", "scale", mask(heads * head_dim, 64), "prompt_last", 8.0)
                for l in range(0, L, 3)
            ]
            ivs += [
                Intervention(
                    l,
                    "mlp.neurons",
                    "scale",
                    mask(adapter.site_dim(model, l, "mlp.neurons"), 50),
                    "prompt_last",
                    8.0,
                )
                for l in range(1, L, 3)
            ]
        else:
            ivs = [Intervention(l, "attn.out", "add", vec(h), "prompt_last", 1.0) for l in range(L)]
        plans.append(SteeringPlan(ivs, f"cfg{i}", model_hint(model)))
    return plans


__all__ = [
    "SITE_CONFIGS",
    "EXTRA_CONFIGS",
    "build_plan",
    "conditional_plan",
    "mixed_plans",
    "random_plan",
    "additive_vectors",
    "additive_layers",
    "middle_layer",
    "site_count",
]
