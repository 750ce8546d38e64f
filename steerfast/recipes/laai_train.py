"""LAAI's training: demonstrations -> Δ per layer -> a folded plan (recipes/laai.py has the math
and the choices; recipes/laai_config.py the settings). `train_plan` is laai() without a dev set;
laai_select.py calls it once per candidate setting."""

from __future__ import annotations

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
from .checks import check_layers, check_pairs
from .laai_config import LaaiConfig, Layers, check_seed, resolve_config
from .laai_fold import fold
from .laai_prox import adam_prox_


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
    out = check_layers(layers, n, "LAAI")
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


def train_deltas(
    model: nn.Module,
    tokenizer,
    demos: Sequence[tuple[str, str]],
    *,
    config: LaaiConfig | None = None,
    seed: int = 0,
    progress: bool = True,
    **overrides,
) -> tuple[dict[int, Tensor], dict]:
    """(Δ per layer, training record). `config` (default LaaiConfig()) with keyword `overrides`
    of its settings; see recipes/laai.py for the objective."""
    cfg = resolve_config(config, overrides)
    chosen = resolve_layers(model, cfg.layers)
    adapter = get_adapter(model)
    weight = adapter.projection(model, chosen[0], "attn").weight
    batch = demo_batch(tokenizer, demos, weight.device)
    gen = torch.Generator().manual_seed(int(seed))
    dim = adapter.site_dim(model, chosen[0], "attn.heads")  # the projection's input width
    deltas = {
        l: (torch.randn(dim, generator=gen, dtype=torch.float64) * cfg.init_std)
        .to(weight.dtype)
        .to(weight.device)
        .requires_grad_(True)
        for l in chosen
    }
    opt = torch.optim.Adam(list(deltas.values()), lr=cfg.lr)
    was_training = model.training
    model.eval()
    try:
        history, best, best_at, best_state = _optimise(model, batch, deltas, opt, cfg, progress)
    finally:
        model.train(was_training)  # also when a step raises (or is interrupted)
    record = {
        "steps": len(history),
        "initial_loss": history[0],
        "final_loss": history[-1],
        "best_loss": best,
        "best_step": best_at,
        "stopped_early": len(history) < cfg.steps,
    }
    return best_state, record


def _optimise(model, batch, deltas, opt, cfg: LaaiConfig, progress: bool):
    history: list[float] = []
    best, best_at, best_state = float("inf"), 0, None
    heads, _ = head_layout(model)
    with frozen(model), torch.enable_grad():
        bar = tqdm(range(cfg.steps), desc="LAAI", disable=not progress, leave=False)
        for step in bar:
            opt.zero_grad(set_to_none=True)
            ce = cross_entropy(model, batch, deltas)
            pen = penalty(deltas, heads, cfg.l1, cfg.l2)
            (ce if cfg.proximal else ce + pen).backward()
            value = float(ce.detach() + pen.detach())
            history.append(value)
            if best_state is None or value < best - cfg.min_delta * max(abs(best), 1.0):
                best, best_at = value, step
                best_state = {l: d.detach().clone() for l, d in deltas.items()}
            bar.set_postfix(loss=f"{value:.4f}", ce=f"{float(ce.detach()):.4f}")
            if step - best_at >= cfg.patience:
                break
            opt.step()
            if cfg.proximal:
                adam_prox_(opt, deltas.values(), heads, cfg.l1, cfg.l2)
        bar.close()
    return history, best, best_at, best_state


def survivors(deltas: dict[int, Tensor], heads: int, survive: float = LaaiConfig.survive) -> dict:
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


def train_plan(model: nn.Module, tokenizer, demos, config: LaaiConfig, seed: int = 0, progress: bool = True):
    """Train Δ's under `config` and fold them into a plan; the layers whose Δ the penalty zeroed
    are left out (they add nothing), and a plan with none left is refused."""
    check_seed(seed)
    deltas, record = train_deltas(model, tokenizer, demos, config=config, seed=seed, progress=progress)
    heads, _ = head_layout(model)
    surv = survivors(deltas, heads, config.survive)
    kept = {l: d for l, d in deltas.items() if bool(d.abs().max() > 0)}
    if not kept:
        raise PlanError(
            f"the group-lasso penalty zeroed every head (λ1={config.l1}, λ2={config.l2}): there is nothing "
            "to steer with; use a smaller λ2"
        )
    meta = {
        "layers": sorted(deltas),
        "demos": len(demos),
        "seed": int(seed),
        "hyper": config.hyper(),
        "training": record,
        "survivors": surv,
        "surviving_layers": [int(l) for l, s in surv.items() if s["heads"]],
        "surviving_heads": sum(len(s["heads"]) for s in surv.values()),
        "total_heads": heads * len(deltas),
    }
    return SteeringPlan(fold(model, kept), "laai", model_hint(model), meta)


__all__ = [
    "train_plan",
    "train_deltas",
    "objective",
    "cross_entropy",
    "penalty",
    "demo_batch",
    "DemoBatch",
    "injected",
    "frozen",
    "resolve_layers",
    "survivors",
    "Layers",
]
