"""The tune's plot: effect vs damage (KL on neutral text) per layer, one curve over strengths,
the damage budget as a line and the chosen cell (the knee under the budget) marked."""

from __future__ import annotations

from ..optional import pyplot


def plot(
    rows: list[dict], path: str, kl_budget: float, chosen: dict | None, title: str, effect_label: str
) -> None:
    plt = pyplot("the tuning plot (steerfast tune --plot)")

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for layer in sorted({r["layer"] for r in rows}):
        rs = sorted((r for r in rows if r["layer"] == layer), key=lambda r: r["strength"])
        x = [r["kl"]["mean"] for r in rs]
        y = [r["effect"]["mean"] for r in rs]
        yerr = [
            [r["effect"]["mean"] - r["effect"]["lo"] for r in rs],
            [r["effect"]["hi"] - r["effect"]["mean"] for r in rs],
        ]
        line = ax.errorbar(x, y, yerr=yerr, marker="o", ms=4, lw=1.2, capsize=2, label=f"layer {layer}")
        for r, xi, yi in zip(rs, x, y):
            ax.annotate(
                f"{r['strength']:g}",
                (xi, yi),
                fontsize=6,
                xytext=(3, 3),
                textcoords="offset points",
                color=line[0].get_color(),
            )
    ax.axvline(kl_budget, color="grey", ls="--", lw=1, label=f"KL budget {kl_budget:g}")
    ax.axhline(0, color="black", lw=0.5)
    if chosen is not None:
        ax.plot(
            [chosen["kl"]["mean"]],
            [chosen["effect"]["mean"]],
            marker="*",
            ms=16,
            color="red",
            ls="none",
            label=f"chosen: layer {chosen['layer']}, strength {chosen['strength']:g}",
        )
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlabel("damage: KL(unsteered || steered) on neutral text, nats/token")
    ax.set_ylabel(f"effect: {effect_label}")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
