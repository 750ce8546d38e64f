"""`steerfast inspect PLAN`: what a plan steers (layers, sites, kinds, positions, norms,
metadata), optionally a per-layer norm plot. (Named inspect_plan: `inspect` is stdlib.)"""

from __future__ import annotations

import json

from ..optional import pyplot
from .common import read_plan, say

META_WIDTH = 110


def add_parser(sub) -> None:
    p = sub.add_parser(
        "inspect",
        help="what a plan steers: layers, sites, kinds, positions, norms, metadata",
        description=__doc__,
    )
    p.add_argument("plan", help=".safetensors plan, .gguf control vector or steering-vectors .pt")
    p.add_argument("--scale", type=float, default=None, help="strength of an imported vector")
    p.add_argument("--plot", metavar="PNG", help="write a per-layer norm plot")
    p.add_argument("--json", metavar="JSON", help="write the summary (with full metadata) as JSON")
    p.set_defaults(func=run)


def summary(plan) -> dict:
    rows = []
    for iv in plan.interventions:
        t = iv.tensor
        rows.append(
            {
                **iv.header(),
                "entries": iv.entries,
                "dim": iv.dim,
                "norm": float(t.norm(dim=1).mean()),  # mean row norm of the tensor
                "applied_norm": float(t.norm(dim=1).mean() * abs(iv.strength)),
                "nonzero": int((t != 0).sum()),
            }
        )
    return {
        "method": plan.method,
        "model": plan.model,
        "interventions": rows,
        "meta": plan.meta,
        "layers": sorted({r["layer"] for r in rows}),
        "sites": sorted({r["site"] for r in rows}),
        "condition": None if plan.condition is None else plan.condition.header(),
    }


def render(s: dict) -> str:
    lines = [
        f"method {s['method']}   model {json.dumps(s['model'])}",
        f"{len(s['interventions'])} intervention(s) on layer(s) {_ranges(s['layers'])}, "
        f"site(s) {', '.join(s['sites'])}",
        f"  {'layer':>5}  {'site':<11} {'kind':<5} {'positions':<15} {'strength':>9} {'E':>3} "
        f"{'D':>5} {'norm':>9} {'|s|·norm':>9} {'nonzero':>7}",
    ]
    for r in s["interventions"]:
        lines.append(
            f"  {r['layer']:>5}  {r['site']:<11} {r['kind']:<5} {r['positions']:<15} "
            f"{r['strength']:>9.4g} {r['entries']:>3} {r['dim']:>5} {r['norm']:>9.4g} "
            f"{r['applied_norm']:>9.4g} {r['nonzero']:>7}"
        )
    gate = s.get("condition")
    if gate is not None:
        which = "all" if gate["gated"] is None else ", ".join(map(str, gate["gated"]))
        lines.append(f"condition ({gate['op']}) gates intervention(s) {which}:")
        for c in gate["conditions"]:
            lines.append(
                f"  c·{c['aggregate']}(h) at {c['site']} of layer {c['layer']} {c['comparator']} {c['threshold']:.6g}"
            )
    lines.append("metadata:" if s["meta"] else "metadata: none")
    for k, v in s["meta"].items():
        if k == "tuned" and isinstance(v, dict) and "measured" in v:
            lines += tuned_lines(v)
            continue
        text = json.dumps(v)
        lines.append(f"  {k}: {text if len(text) <= META_WIDTH else text[:META_WIDTH] + ' ...'}")
    return "\n".join(lines)


def tuned_lines(t: dict) -> list[str]:
    """How `steerfast tune` chose the plan, and what it measured (docs/tuning.md)."""

    def cell(e):
        return f"{e['mean']:+.3f} [{e['lo']:+.3f}, {e['hi']:+.3f}]"

    m, b = t["measured"], t.get("budget", {})
    signs = ", both signs" if t.get("both_signs") else ""
    return [
        f"  tuned: layer {t.get('layer')} strength {t.get('strength'):g} ({t.get('family')}{signs}) of grid "
        f"layers {t['grid']['layers']} x strengths {t['grid']['strengths']}",
        f"    chosen by: {t.get('how')}",
        f"    effect ({t.get('effect_metric')}) {cell(m['effect'])} on {t.get('eval_prompts')} eval prompts (not used to build the vector)",
        f"    damage: KL {cell(m['kl'])} (budget {b.get('kl')}), ppl ratio {cell(m['ppl_ratio'])} "
        f"(budget {b.get('ppl_ratio')}), rep 3-gram {cell(m['rep'])} (budget {b.get('rep')}) "
        f"on {t.get('neutral_tokens')} neutral tokens; the grid took {t.get('seconds')} s",
    ]


def _ranges(xs) -> str:
    out, start = [], None
    for i, x in enumerate(xs):
        start = x if start is None else start
        if i + 1 == len(xs) or xs[i + 1] != x + 1:
            out.append(str(start) if start == x else f"{start}-{x}")
            start = None
    return ", ".join(out)


def plot(s: dict, path: str) -> None:
    """Applied norm (|strength|·mean row norm) per layer, one series per (site, kind)."""
    plt = pyplot("the plan plot (steerfast inspect --plot)")

    series: dict[str, dict[int, float]] = {}
    for r in s["interventions"]:
        by_layer = series.setdefault(f"{r['site']} {r['kind']}", {})
        by_layer[r["layer"]] = by_layer.get(r["layer"], 0.0) + r["applied_norm"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for label, by_layer in sorted(series.items()):
        xs = sorted(by_layer)
        ax.plot(xs, [by_layer[x] for x in xs], marker="o", lw=1.2, label=label)
    ax.set_xlabel("layer")
    ax.set_ylabel("|strength| · norm")
    ax.set_title(f"{s['method']}: per-layer norm", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args) -> int:
    s = summary(read_plan(args.plan, args.scale))
    print(render(s))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(s, fh, indent=1)
        say(f"wrote {args.json}")
    if args.plot:
        plot(s, args.plot)
        say(f"wrote {args.plot}")
    return 0
