"""SADI (Wang, Yang, Peng, arXiv 2410.12299): semantics-adaptive dynamic intervention.

1. Contrastive pairs (prompt + correct answer, prompt + wrong answer): one batched forward
   per side, activations read at the last real token of every sequence, at every layer.
2. Mean difference over pairs (running sums: memory does not grow with the pair count).
   Scores per element type:
       head    input of o_proj viewed (H, d_head), averaged over d_head -> (L, H)
       neuron  output of the MLP activation act(gate)                  -> (L, I)
       hidden  output of down_proj                                     -> (L, D)
3. Binary mask: global top-K over every (layer, unit) by signed score (no abs).
4. Steering: A' = A + δ·(M ⊙ A) on the input's own activation at the steered positions
   (default the prompt's last token), as "scale" interventions with strength δ.

δ convention: the official code multiplies the masked entries by a factor s; here
A' = (1 + δ)·A on masked entries, so s = 1 + δ (official s = 5 means δ = 4).
Scaling act(gate)[j] scales (act(gate)·up)[j] by the same factor, so a neuron mask lands on
site mlp.neurons (the down_proj input). Unlike the official code, which overwrites the whole
last-token vector with a scaled copy recorded from an unsteered run, each masked entry here
scales the steered run's own value (the paper's formula); unmasked entries are untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..adapters import execution_device, get_adapter, head_layout
from ..errors import PlanError
from ..plan import Intervention, SteeringPlan, model_hint
from ..positions import parse_policy
from ..tokens import batches, left_padded
from .checks import check_batch_size, check_number, check_pairs, check_token_ids
from .sadi_dev import choose_on_dev

ELEMENTS = ("head", "neuron", "hidden")
SITE_OF = {"head": "attn.heads", "neuron": "mlp.neurons", "hidden": "mlp.out"}
STEER_POSITIONS = ("prompt_last", "from_prompt_end")

Text = str | Sequence[int]


@dataclass
class SadiScores:
    """Mean differences (positive - negative) at the last token, fp32 on CPU.

    scores[e]: (L, U) ranking scores per element type.
    site_diff[e]: (L, site_dim) mean difference of the steered site's own activation
    (o_proj input, down_proj input, down_proj output): the fixed-vector baseline adds these.
    residual: (L, D) mean difference of the residual stream entering each layer, i.e. CAA's
    vector for every layer from the same forward passes.
    """

    scores: dict[str, Tensor]
    site_diff: dict[str, Tensor]
    residual: Tensor
    pairs: int
    head_dim: int

    def units(self, element: str) -> int:
        return self.scores[_check_element(element)].numel()


@dataclass
class SadiResult:
    plan: SteeringPlan
    scores: SadiScores
    units: list[tuple[int, int]] = field(default_factory=list)  # (layer, unit), best first
    choice: object | None = None  # evaluate.selection.Choice when chosen on a dev set


# without a dev set: the safest setting measured (docs/evaluation.md): s = 1.25. The paper's
# s = 5 (δ = 4) destroyed dev accuracy on the small models.
DEFAULT_DELTA = 0.25


def _check_element(element: str) -> str:
    if element not in ELEMENTS:
        raise PlanError(f"unknown SADI element {element!r}; expected one of {', '.join(ELEMENTS)}")
    return element


def _rows(tokenizer, texts: Sequence[Text], side: str) -> list[list[int]]:
    rows = []
    for i, t in enumerate(texts):
        if isinstance(t, str):
            if tokenizer is None:
                raise PlanError("text pairs need a tokenizer")
            row = tokenizer(t, add_special_tokens=True)["input_ids"]
        else:
            try:
                row = [int(x) for x in t]
            except (TypeError, ValueError, RuntimeError) as exc:
                raise PlanError(
                    f"pair {i}: the {side} side must be a string or token ids, got {t!r:.80}"
                ) from exc
        if not row:
            raise PlanError(f"pair {i}: the {side} side {t!r} tokenizes to nothing")
        rows.append(row)
    return rows


class _LastTokenSums:
    """Forward hooks that add each layer's last-token activations into running fp32 sums."""

    def __init__(self, model):
        adapter = get_adapter(model)
        self.layers = adapter.layer_modules(model)
        self.act_name = adapter.mlp_act
        # fused MoE experts have no single neuron site: heads and hidden still work
        self.neurons = adapter.mlp_neurons is not None and adapter.mlp_act is not None
        L = len(self.layers)
        dev = execution_device(model)
        hidden = adapter.site_dim(model, 0, "mlp.out")
        inter = adapter.site_dim(model, 0, "mlp.neurons") if self.neurons else 0
        self.sums = {
            "heads": torch.zeros(L, adapter.site_dim(model, 0, "attn.heads"), device=dev),
            "act": torch.zeros(L, inter, device=dev),
            "neurons": torch.zeros(L, inter, device=dev),
            "hidden": torch.zeros(L, hidden, device=dev),
            "residual": torch.zeros(L, hidden, device=dev),  # entering each layer
        }
        self.adapter, self.model = adapter, model
        self._handles = []

    def _add(self, key: str, layer: int, t) -> None:
        if isinstance(t, tuple):  # an MoE block's (hidden, router logits)
            t = t[0]
        # left padding: the last real token of every row sits at index -1
        self.sums[key][layer] += t[:, -1].float().sum(0).to(self.sums[key].device)

    def __enter__(self):
        for i, layer in enumerate(self.layers):
            heads = self.adapter.site(self.model, i, "attn.heads").module
            hidden = self.adapter.site(self.model, i, "mlp.out").module  # the stream delta
            self._handles += [
                layer.register_forward_pre_hook(
                    lambda m, a, kw, i=i: self._add("residual", i, a[0] if a else kw["hidden_states"]),
                    with_kwargs=True,
                ),
                heads.register_forward_pre_hook(lambda m, a, i=i: self._add("heads", i, a[0])),
                hidden.register_forward_hook(lambda m, a, out, i=i: self._add("hidden", i, out)),
            ]
            if self.neurons:
                down = self.adapter.site(self.model, i, "mlp.neurons").module
                act = layer.get_submodule(self.act_name)
                self._handles += [
                    act.register_forward_hook(lambda m, a, out, i=i: self._add("act", i, out)),
                    down.register_forward_pre_hook(lambda m, a, i=i: self._add("neurons", i, a[0])),
                ]
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles = []

    def take(self) -> dict[str, Tensor]:
        out = {k: v.clone() for k, v in self.sums.items()}
        for v in self.sums.values():
            v.zero_()
        return out


@torch.no_grad()
def mean_differences(
    model, tokenizer, pairs: Sequence[tuple[Text, Text]], batch_size: int = 16, progress: bool = True
) -> SadiScores:
    """Mean last-token activation differences of the pairs at every layer and element type.

    Pairs are (positive, negative) texts, or token-id lists (then tokenizer may be None).
    """
    pairs = check_pairs(pairs, "SADI", "(positive, negative) pair", sides=(str, list, tuple, torch.Tensor))
    check_batch_size(batch_size)
    pos = _rows(tokenizer, [p for p, _ in pairs], "positive")
    neg = _rows(tokenizer, [n for _, n in pairs], "negative")
    vocab = model.get_input_embeddings().num_embeddings
    check_token_ids(pos, vocab, "positive side of pair")
    check_token_ids(neg, vocab, "negative side of pair")
    device = next(model.parameters()).device
    pad = getattr(tokenizer, "pad_token_id", None) or 0
    sides = []
    with _LastTokenSums(model) as acc:
        for name, rows in (("positive", pos), ("negative", neg)):
            for chunk in batches(rows, batch_size, f"SADI {name}", progress):
                ids, mask, position_ids = left_padded(chunk, pad, device)
                model(
                    input_ids=ids,
                    attention_mask=mask,
                    position_ids=position_ids,
                    use_cache=False,
                    logits_to_keep=1,
                )
            sides.append(acc.take())
    n = len(pairs)
    diff = {k: ((sides[0][k] - sides[1][k]) / n).cpu() for k in sides[0]}
    heads, head_dim = head_layout(model)
    L = diff["heads"].shape[0]
    scores = {
        "head": diff["heads"].view(L, heads, head_dim).mean(-1),
        "neuron": diff["act"],
        "hidden": diff["hidden"],
    }
    site_diff = {"head": diff["heads"], "neuron": diff["neurons"], "hidden": diff["hidden"]}
    return SadiScores(scores, site_diff, diff["residual"], n, head_dim)


def top_k(scores: Tensor, k: int) -> list[tuple[int, int]]:
    """Global top-k (layer, unit) of an (L, U) score matrix by signed value, best first."""
    total = scores.numel()
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= total:
        raise PlanError(f"K must be an int in 1..{total} (the number of units), got {k!r}")
    idx = torch.topk(scores.flatten(), k).indices
    U = scores.shape[1]
    return [(int(i) // U, int(i) % U) for i in idx]


def _masks(model, element: str, units: Sequence[tuple[int, int]], head_dim: int) -> dict[int, Tensor]:
    adapter = get_adapter(model)
    site = SITE_OF[element]
    width = 1 if element != "head" else head_dim
    masks: dict[int, Tensor] = {}
    for layer, unit in units:
        if layer not in masks:
            masks[layer] = torch.zeros(adapter.site_dim(model, layer, site))
        masks[layer][unit * width : (unit + 1) * width] = 1.0
    return masks


def _check_positions(positions: str) -> str:
    name, _ = parse_policy(positions)
    if name not in STEER_POSITIONS:
        raise PlanError(f"SADI steers at {' or '.join(STEER_POSITIONS)}, got {positions!r}")
    return positions


def mask_plan(
    model,
    element: str,
    units: Sequence[tuple[int, int]],
    delta: float,
    positions: str = "prompt_last",
    head_dim: int | None = None,
    method: str = "sadi",
    meta: dict | None = None,
) -> SteeringPlan:
    """Scale interventions (one per touched layer) for a binary mask over (layer, unit)."""
    site = SITE_OF[_check_element(element)]
    delta = check_number(delta, "δ")
    _check_positions(positions)
    if not units:
        raise PlanError("a SADI mask needs at least one unit")
    head_dim = head_dim or head_layout(model)[1]
    ivs = [
        Intervention(layer, site, "scale", m, positions, delta)
        for layer, m in sorted(_masks(model, element, units, head_dim).items())
    ]
    info = {
        "element": element,
        "units": [list(u) for u in units],
        "delta": delta,
        "official_multiplier": 1.0 + delta,
        "positions": positions,
    }
    return SteeringPlan(ivs, method, model_hint(model), {**info, **(meta or {})})


def sadi(
    model,
    tokenizer,
    pairs: Sequence[tuple[Text, Text]],
    element: str = "head",
    k: int = 4,
    delta: float | None = None,
    positions: str = "prompt_last",
    scores: SadiScores | None = None,
    batch_size: int = 16,
    progress: bool = True,
    dev: Sequence[dict] | None = None,
    grid: tuple | None = None,
    scoring: str = "full",
) -> SadiResult:
    """A SADI plan (SADI-Head / -Neuron / -Hidden) from contrastive pairs.

    Pass `scores` from an earlier `mean_differences` to skip the forward passes (sweeps).
    With `dev` (MC items {prompt, options, answer}), K and δ are chosen on it over `grid`
    ((K list, s list), s = 1 + δ; default recipes.sadi_dev.DEV_GRID) by the paired test
    against no steering; when no setting helps, SadiRefused (a PlanError) is raised and no
    plan is returned. Without `dev`, δ defaults to DEFAULT_DELTA (the safest measured).
    """
    _check_element(element)
    if dev is not None and delta is not None:
        raise PlanError("pass either dev (δ and K chosen on it) or delta, not both")
    delta = check_number(DEFAULT_DELTA if delta is None else delta, "δ")
    _check_positions(positions)
    if element == "neuron" and get_adapter(model).mlp_neurons is None:
        raise PlanError(
            f"SADI-Neuron needs mlp.neurons, which {model.config.model_type!r} cannot "
            "express (fused experts); use element='head' or 'hidden'"
        )
    if scores is None:
        scores = mean_differences(model, tokenizer, pairs, batch_size, progress)
    choice = None
    if dev is not None:

        def candidate(k_, d):
            units_ = top_k(scores.scores[element], k_)
            return mask_plan(model, element, units_, d, positions, scores.head_dim, f"sadi-{element}")

        k, delta, choice = choose_on_dev(model, tokenizer, dev, candidate, element, grid, scoring)
    units = top_k(scores.scores[element], k)
    plan = mask_plan(
        model,
        element,
        units,
        delta,
        positions,
        scores.head_dim,
        f"sadi-{element}",
        {"k": k, "pairs": scores.pairs, "chosen_on_dev": choice is not None},
    )
    return SadiResult(plan, scores, units, choice)


__all__ = [
    "DEFAULT_DELTA",
    "ELEMENTS",
    "SITE_OF",
    "SadiScores",
    "SadiResult",
    "mean_differences",
    "top_k",
    "mask_plan",
    "sadi",
]
