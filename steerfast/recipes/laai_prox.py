"""LAAI's proximal step: the sparse-group-lasso penalty applied after each Adam step (recipes/laai.py)."""

from __future__ import annotations

import torch
from torch import Tensor


@torch.no_grad()
def group_prox_(delta: Tensor, heads: int, t1: Tensor | float, t2: Tensor | float) -> Tensor:
    """In place: the proximal operator of t1‖Δ‖₁ + Σ_h t2_h‖Δ_h‖₂ (sparse group lasso: soft-threshold,
    then shrink each head). t1: scalar or per element; t2: scalar or per head (heads,)."""
    delta.copy_(delta.sign() * (delta.abs() - t1).clamp(min=0))
    view = delta.view(heads, -1)
    norms = torch.linalg.vector_norm(view, dim=1)
    scale = (1 - torch.as_tensor(t2, dtype=norms.dtype, device=norms.device) / norms.clamp_min(1e-30)).clamp(
        min=0
    )
    view.mul_(scale.unsqueeze(1))
    return delta


@torch.no_grad()
def adam_prox_(opt: torch.optim.Adam, params, heads: int, l1: float, l2: float) -> None:
    """The penalty's proximal step in the metric of Adam's last step (see the module docstring)."""
    group = opt.param_groups[0]
    lr, (_, beta2), eps = group["lr"], group["betas"], group["eps"]
    for p in params:
        state = opt.state[p]
        bc2 = 1 - beta2 ** float(state["step"])
        denom = (state["exp_avg_sq"] / bc2).sqrt() + eps  # Adam's step is lr * m_hat / denom
        t1 = lr * l1 / denom
        t2 = lr * l2 / denom.view(heads, -1).mean(1)
        group_prox_(p, heads, t1, t2)


__all__ = ["group_prox_", "adam_prox_"]
