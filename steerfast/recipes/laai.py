"""LAAI (Nguyen et al., arXiv 2502.06115): a learned additive vector at the attention output.

For each chosen layer l a vector Δ_l of size H·d_head is added to the input of o_proj at the
prompt's last token. The model stays frozen; only the Δ's are trained, on 1-5 demonstrations
(prompt, target) under teacher forcing:

    loss = mean over demos of CE(target tokens | prompt, Δ)
           + λ1 Σ_l ‖Δ_l‖₁ + λ2 Σ_l Σ_h ‖Δ_l,h‖₂          (group lasso, Δ_l viewed (H, d_head))

At inference o_proj(a + Δ) = o_proj(a) + W_o Δ (no o_proj bias in the supported models), so
each Δ_l folds into an "add" intervention at site attn.out of layer l with tensor W_o Δ_l and
positions "prompt_last": the learned plan runs on the same runtime as ActAdd/CAA.

The paper leaves the optimisation open; these are our choices (LaaiConfig's defaults,
recipes/laai_config.py; DEFAULTS is the same as a dict):
  - proximal Adam: each step is an Adam step on the CE alone, then the proximal operator of the
    penalty in Adam's own metric (D = (sqrt(v_hat) + eps) / lr): the L1 part is an exact
    per-element soft-threshold by lr·λ1/D_i, the group part a per-head shrink
    Δ_h <- Δ_h · max(0, 1 - lr·λ2 / (mean_h(D) ‖Δ_h‖)) (the head's mean preconditioner: exact for a
    scalar metric per head, an approximation otherwise). Heads are set to exactly zero, and a head
    stays at zero while its CE gradient is smaller than about λ2 (in norm): λ2 is in gradient units.
    `proximal=False` gives the old behaviour (Adam on CE + penalty: heads shrink, none is zeroed);
  - at most 60 steps, full batch (all demonstrations every step), lr 0.05;
  - early stop when the total loss (CE + penalty) has not improved by 1e-3 (relative, absolute
    below 1) for 8 steps; the best Δ seen is returned;
  - layers: "all" (every layer gets its own Δ); init: seeded normal, std 1e-3;
  - a head "survives" when its ‖Δ_h‖₂ is non-zero (`survive` > 0: at least that fraction of the
    largest head norm); per-head norms and survivors are in plan.meta["survivors"].
Without a dev set λ2 = 0.1 (67/270 heads kept on SmolLM2, fv_antonym): of the candidates it hurt
least where LAAI hurts (SmolLM2, en_fr multiple choice, dev: unsteered 57/100, λ2 = 1e-3 41,
0.03 39, 0.1 53; docs/laai_results_mc.md) and, like every candidate, never scored below the
unsteered model on the fv_* tasks (docs/laai_results.md, where the tables' LAAI column used the
earlier λ2 = 1e-3). No default helps reliably at 135M: use dev (next paragraph).
λ1, λ2 and the layers are chosen per task on a dev set when one is given (laai(..., dev=...),
recipes/laai_select.py), which also refuses to return a plan when nothing helps on dev.

The training is in recipes/laai_train.py; this module is the entry point and re-exports it.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..plan import SteeringPlan
from .laai_config import LaaiConfig, Layers, check_seed, resolve_config
from .laai_fold import fold
from .laai_select import select
from .laai_train import (
    DemoBatch,
    cross_entropy,
    demo_batch,
    frozen,
    injected,
    objective,
    penalty,
    resolve_layers,
    survivors,
    train_deltas,
    train_plan,
)

DEFAULTS = LaaiConfig().as_dict()


def laai(
    model: nn.Module,
    tokenizer,
    demos: Sequence[tuple[str, str]],
    config: LaaiConfig | None = None,
    *,
    seed: int = 0,
    progress: bool = True,
    dev=None,
    candidates=None,
    alpha: float = 0.05,
    **overrides,
) -> SteeringPlan:
    """Learn Δ's from (prompt, target) demonstrations and fold them into a plan (see module doc).

    The settings are `config` (default LaaiConfig()) with keyword `overrides` of its fields
    (`laai(model, tok, demos, l2=1e-3, steps=20)`). With `dev` (a list of (prompt, target) pairs
    scored by greedy exact match, or of multiple-choice items {prompt, options, answer}), the
    settings in `candidates` (default laai_select.CANDIDATES: overrides of those settings) are
    each trained and scored on dev against the unsteered model, and the best one that beats it
    under the paired test (McNemar, Bonferroni over the candidates, level `alpha`) is returned;
    when none does, `NoGainError` is raised and no plan is made. The choice is in
    plan.meta["selection"].
    """
    check_seed(seed)
    cfg = resolve_config(config, overrides)
    if dev is not None:
        return select(model, tokenizer, demos, dev, cfg, seed, progress, candidates, alpha)
    return train_plan(model, tokenizer, demos, cfg, seed, progress)


__all__ = [
    "laai",
    "LaaiConfig",
    "Layers",
    "train_deltas",
    "train_plan",
    "fold",
    "objective",
    "cross_entropy",
    "penalty",
    "demo_batch",
    "DemoBatch",
    "injected",
    "frozen",
    "resolve_layers",
    "survivors",
    "DEFAULTS",
]
