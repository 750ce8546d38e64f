"""LAAI (Nguyen et al., arXiv 2502.06115): a learned additive vector at the attention output.

For each chosen layer l a vector Δ_l of size H·d_head is added to the input of o_proj at the
prompt's last token. The model stays frozen; only the Δ's are trained, on 1-5 demonstrations
(prompt, target) under teacher forcing:

    loss = mean over demos of CE(target tokens | prompt, Δ)
           + λ1 Σ_l ‖Δ_l‖₁ + λ2 Σ_l Σ_h ‖Δ_l,h‖₂          (group lasso, Δ_l viewed (H, d_head))

At inference o_proj(a + Δ) = o_proj(a) + W_o Δ (no o_proj bias in the supported models), so
each Δ_l folds into an "add" intervention at site attn.out of layer l with tensor W_o Δ_l and
positions "prompt_last": the learned plan runs on the same runtime as ActAdd/CAA.

The paper leaves the optimisation open; these are our choices (DEFAULTS):
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
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..adapters import get_adapter, head_layout
from ..errors import PlanError
from ..plan import SteeringPlan, model_hint
from ..tokens import left_padded
from .checks import check_number, check_pairs
from .laai_fold import fold
from .laai_prox import adam_prox_

Layers = int | Sequence[int] | str

DEFAULTS = dict(
    layers="all",
    steps=60,
    lr=0.05,
    l1=1e-4,
    l2=0.1,  # the safest measured without a dev set (module docstring)
    patience=8,
    min_delta=1e-3,
    init_std=1e-3,
    survive=0.0,
    proximal=True,
)


@dataclass
class DemoBatch:
    """Prompt + target rows, left padded; `prompt_last[b]` is the column of row b's last prompt token."""

    ids: Tensor
    mask: Tensor
    pos: Tensor
    prompt_last: Tensor  # (B,) long
    target: Tensor  # (B, T) bool: the column holds a target token

    @property
    def select(self) -> Tensor:
        """(B, T) bool: the prompt-last row of each demo."""
        cols = torch.arange(self.ids.shape[1], device=self.ids.device)
        return cols.unsqueeze(0) == self.prompt_last.unsqueeze(1)


def demo_batch(tokenizer, demos: Sequence[tuple[str, str]], device="cpu") -> DemoBatch:
    """Tokenize (prompt, target) pairs: prompt as generation sees it, target without special tokens."""
    demos = check_pairs(demos, "LAAI", "demonstration (prompt, target)")
    rows, n_target = [], []
    for prompt, target in demos:
        p = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        t = tokenizer(target, add_special_tokens=False)["input_ids"]
        if not p:
            raise PlanError(f"demonstration prompt {prompt!r} tokenizes to nothing")
        if not t:
            raise PlanError(f"demonstration target {target!r} tokenizes to nothing")
        rows.append(list(p) + list(t))
        n_target.append(len(t))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids, mask, pos = left_padded(rows, pad, device)
    width = ids.shape[1]
    n_t = torch.tensor(n_target, device=ids.device)
    cols = torch.arange(width, device=ids.device).unsqueeze(0)
    return DemoBatch(ids, mask, pos, width - 1 - n_t, cols >= (width - n_t).unsqueeze(1))


def resolve_layers(model: nn.Module, layers: Layers) -> list[int]:
    n = get_adapter(model).num_layers(model)
    if isinstance(layers, str):
        if layers != "all":
            raise PlanError(f"layers must be an int, a list of ints or 'all', got {layers!r}")
        return list(range(n))
    out = [layers] if isinstance(layers, int) else list(layers)
    if not out:
        raise PlanError("LAAI needs at least one layer")
    for layer in out:
        if not isinstance(layer, int) or not 0 <= layer < n:
            raise PlanError(f"layer {layer!r} out of range; the model has {n} layers (0..{n - 1})")
    if len(set(out)) != len(out):
        raise PlanError(f"layers {out} name a layer twice")
    return sorted(out)


@contextmanager
def injected(model: nn.Module, deltas: dict[int, Tensor], select: Tensor) -> Iterator[None]:
    """Differentiable: adds deltas[l] to o_proj's input of layer l at the rows where select (B, T) is True."""
    adapter = get_adapter(model)
    handles = []
    for layer, delta in deltas.items():

        def pre(mod, args, delta=delta):
            x = args[0]
            return (x + select.unsqueeze(-1).to(x.dtype) * delta.to(x.dtype),) + tuple(args[1:])

        handles.append(adapter.projection(model, layer, "attn").register_forward_pre_hook(pre))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def penalty(deltas: dict[int, Tensor], heads: int, l1: float, l2: float) -> Tensor:
    """λ1 Σ ‖Δ_l‖₁ + λ2 Σ_l Σ_h ‖Δ_l,h‖₂."""
    total = 0.0
    for d in deltas.values():
        total = total + l1 * d.abs().sum() + l2 * torch.linalg.vector_norm(d.view(heads, -1), dim=1).sum()
    return total


def cross_entropy(model: nn.Module, batch: DemoBatch, deltas: dict[int, Tensor]) -> Tensor:
    """Mean over demos of the per-token CE of the target tokens, with Δ at each prompt's last token."""
    with injected(model, deltas, batch.select):
        logits = model(
            input_ids=batch.ids, attention_mask=batch.mask, position_ids=batch.pos, use_cache=False
        ).logits
    pred = logits[:, :-1]  # column t predicts token t+1
    pred = pred.to(torch.promote_types(pred.dtype, torch.float32))
    want = batch.ids[:, 1:]
    on = batch.target[:, 1:]
    ce = F.cross_entropy(pred.reshape(-1, pred.shape[-1]), want.reshape(-1), reduction="none")
    ce = (ce.view(want.shape) * on).sum(1) / on.sum(1)
    return ce.mean()


def objective(
    model: nn.Module, batch: DemoBatch, deltas: dict[int, Tensor], l1: float, l2: float
) -> tuple[Tensor, Tensor]:
    """(total loss, CE part)."""
    ce = cross_entropy(model, batch, deltas)
    heads, _ = head_layout(model)
    return ce + penalty(deltas, heads, l1, l2), ce


@contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    """Every parameter requires_grad=False for the duration; the previous flags restored after."""
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)


def _check(steps, lr, l1, l2, patience, init_std, survive, min_delta=0.0):
    for name, value in (
        ("λ1 (l1)", l1),
        ("λ2 (l2)", l2),
        ("init_std", init_std),
        ("survive", survive),
        ("min_delta", min_delta),
    ):
        check_number(value, name, minimum=0.0)
    check_number(lr, "lr", minimum=0.0, strict=True)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise PlanError(f"steps must be a positive int, got {steps!r}")
    if not isinstance(patience, int) or isinstance(patience, bool) or patience < 1:
        raise PlanError(f"patience must be a positive int, got {patience!r}")


def train_deltas(
    model: nn.Module,
    tokenizer,
    demos: Sequence[tuple[str, str]],
    layers: Layers = "all",
    steps: int = DEFAULTS["steps"],
    lr: float = DEFAULTS["lr"],
    l1: float = DEFAULTS["l1"],
    l2: float = DEFAULTS["l2"],
    patience: int = DEFAULTS["patience"],
    min_delta: float = DEFAULTS["min_delta"],
    init_std: float = DEFAULTS["init_std"],
    seed: int = 0,
    progress: bool = True,
    proximal: bool = DEFAULTS["proximal"],
) -> tuple[dict[int, Tensor], dict]:
    """(Δ per layer, training record). See the module docstring for the objective."""
    _check(steps, lr, l1, l2, patience, init_std, DEFAULTS["survive"], min_delta)
    chosen = resolve_layers(model, layers)
    adapter = get_adapter(model)
    weight = adapter.projection(model, chosen[0], "attn").weight
    batch = demo_batch(tokenizer, demos, weight.device)
    gen = torch.Generator().manual_seed(int(seed))
    dim = adapter.site_dim(model, chosen[0], "attn.heads")  # the projection's input width
    deltas = {
        l: (torch.randn(dim, generator=gen, dtype=torch.float64) * init_std)
        .to(weight.dtype)
        .to(weight.device)
        .requires_grad_(True)
        for l in chosen
    }
    opt = torch.optim.Adam(list(deltas.values()), lr=lr)
    was_training = model.training
    model.eval()
    try:
        history, best, best_at, best_state = _optimise(
            model, batch, deltas, opt, steps, l1, l2, patience, min_delta, progress, proximal
        )
    finally:
        model.train(was_training)  # also when a step raises (or is interrupted)
    record = {
        "steps": len(history),
        "initial_loss": history[0],
        "final_loss": history[-1],
        "best_loss": best,
        "best_step": best_at,
        "stopped_early": len(history) < steps,
    }
    return best_state, record


def _optimise(model, batch, deltas, opt, steps, l1, l2, patience, min_delta, progress, proximal):
    history: list[float] = []
    best, best_at, best_state = float("inf"), 0, None
    heads, _ = head_layout(model)
    with frozen(model), torch.enable_grad():
        bar = tqdm(range(steps), desc="LAAI", disable=not progress, leave=False)
        for step in bar:
            opt.zero_grad(set_to_none=True)
            ce = cross_entropy(model, batch, deltas)
            pen = penalty(deltas, heads, l1, l2)
            (ce if proximal else ce + pen).backward()
            value = float(ce.detach() + pen.detach())
            history.append(value)
            if best_state is None or value < best - min_delta * max(abs(best), 1.0):
                best, best_at = value, step
                best_state = {l: d.detach().clone() for l, d in deltas.items()}
            bar.set_postfix(loss=f"{value:.4f}", ce=f"{float(ce.detach()):.4f}")
            if step - best_at >= patience:
                break
            opt.step()
            if proximal:
                adam_prox_(opt, deltas.values(), heads, l1, l2)
        bar.close()
    return history, best, best_at, best_state


def survivors(deltas: dict[int, Tensor], heads: int, survive: float = DEFAULTS["survive"]) -> dict:
    """Per layer: head norms and the surviving heads: non-zero, and at least `survive` × the largest
    head norm (survive=0: every non-zero head)."""
    norms = {
        l: torch.linalg.vector_norm(d.detach().double().view(heads, -1), dim=1) for l, d in deltas.items()
    }
    top = max(float(n.max()) for n in norms.values())
    cut = survive * top
    return {
        str(l): {
            "head_norms": [round(float(x), 6) for x in n],
            "heads": [h for h, x in enumerate(n) if float(x) >= cut and float(x) > 0],
        }
        for l, n in norms.items()
    }


def laai(
    model: nn.Module,
    tokenizer,
    demos: Sequence[tuple[str, str]],
    layers: Layers = DEFAULTS["layers"],
    steps: int = DEFAULTS["steps"],
    lr: float = DEFAULTS["lr"],
    l1: float = DEFAULTS["l1"],
    l2: float = DEFAULTS["l2"],
    patience: int = DEFAULTS["patience"],
    min_delta: float = DEFAULTS["min_delta"],
    init_std: float = DEFAULTS["init_std"],
    survive: float = DEFAULTS["survive"],
    seed: int = 0,
    progress: bool = True,
    proximal: bool = DEFAULTS["proximal"],
    dev=None,
    candidates=None,
    alpha: float = 0.05,
) -> SteeringPlan:
    """Learn Δ's from (prompt, target) demonstrations and fold them into a plan (see module doc).

    With `dev` (a list of (prompt, target) pairs scored by greedy exact match, or of multiple-choice
    items {prompt, options, answer}), the settings in `candidates` (default
    laai_select.CANDIDATES: overrides of the keyword arguments given here) are each trained and
    scored on dev against the unsteered model, and the best one that beats it under the paired
    test (McNemar, Bonferroni over the candidates, level `alpha`) is returned; when none does,
    `NoGainError` is raised and no plan is made. The choice is in plan.meta["selection"].
    """
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise PlanError(f"seed must be an int, got {seed!r}")
    if dev is not None:
        from .laai_select import select

        kw = dict(
            layers=layers, steps=steps, lr=lr, l1=l1, l2=l2, patience=patience, min_delta=min_delta,
            init_std=init_std, survive=survive, seed=seed, progress=progress, proximal=proximal,
        )  # fmt: skip
        return select(model, tokenizer, demos, dev, kw, candidates, alpha)
    _check(steps, lr, l1, l2, patience, init_std, survive, min_delta)
    deltas, record = train_deltas(
        model, tokenizer, demos, layers, steps, lr, l1, l2, patience, min_delta, init_std, seed, progress, proximal
    )  # fmt: skip
    heads, _ = head_layout(model)
    surv = survivors(deltas, heads, survive)
    kept = {l: d for l, d in deltas.items() if bool(d.abs().max() > 0)}
    if not kept:
        raise PlanError(
            f"the group-lasso penalty zeroed every head (λ1={l1}, λ2={l2}): there is nothing to steer "
            "with; use a smaller λ2"
        )
    meta = {
        "layers": sorted(deltas),
        "demos": len(demos),
        "seed": int(seed),
        "hyper": dict(
            steps=steps,
            lr=lr,
            l1=l1,
            l2=l2,
            patience=patience,
            min_delta=min_delta,
            init_std=init_std,
            survive=survive,
            proximal=proximal,
        ),  # fmt: skip
        "training": record,
        "survivors": surv,
        "surviving_layers": [int(l) for l, s in surv.items() if s["heads"]],
        "surviving_heads": sum(len(s["heads"]) for s in surv.values()),
        "total_heads": heads * len(deltas),
    }
    # layers whose Δ the penalty zeroed add nothing: they are left out of the plan
    return SteeringPlan(fold(model, kept), "laai", model_hint(model), meta)


__all__ = [
    "laai",
    "train_deltas",
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
