"""Looking at SADI's scores: a (layer, head) heatmap of the mean difference (paper Fig. 3)
and the global top-K list."""

from __future__ import annotations

from torch import Tensor

from ..optional import pyplot
from ..recipes.sadi import top_k


def top_list(scores: Tensor, k: int = 10) -> list[tuple[int, int, float]]:
    """(layer, unit, score) of the global top-k by signed score, best first."""
    return [(l, u, float(scores[l, u])) for l, u in top_k(scores, k)]


def heatmap(scores: Tensor, path: str, title: str = "SADI head scores", k: int = 10) -> list:
    """Write a PNG of the (L, H) score matrix, top-k heads boxed; returns the top-k list."""
    plt = pyplot("the SADI head-score heatmap")
    from matplotlib.patches import Rectangle

    s = scores.float().numpy()
    lim = float(abs(s).max()) or 1.0
    fig, ax = plt.subplots(figsize=(1.2 + 0.45 * s.shape[1], 1.2 + 0.22 * s.shape[0]))
    im = ax.imshow(s, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", origin="lower")
    top = top_list(scores, min(k, scores.numel()))
    for l, h, _ in top:
        ax.add_patch(Rectangle((h - 0.5, l - 0.5), 1, 1, fill=False, edgecolor="black", lw=1.2))
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="mean difference (correct − wrong), avg over d_head")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return top


__all__ = ["top_list", "heatmap"]
