"""Markdown for `steerfast sadi-study` results (docs/sadi_results_<model>.md)."""

from __future__ import annotations

import json

from .sadi_study import quick_config


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _diff(r: dict) -> str:
    return f"{100 * r['diff']:+.1f} [{100 * r['low']:+.1f}, {100 * r['high']:+.1f}]"


def _p(x: float) -> str:
    return f"{x:.2g}" if x >= 0.001 else "<0.001"


def summary(results: dict) -> list[str]:
    lines = [
        "| task | knobs | scoring | calib pairs / dev / test | always first | none dev | none test |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, t in results["tasks"].items():
        knobs = ", ".join(f"{k}={v}" for k, v in t["knobs"].items() if k != "seed") or "–"
        sz = t["sizes"]
        used = min(sz["calib"], t.get("config", results["config"])["calib_pairs"])
        lines.append(
            f"| {name} | {knobs} | {t['scoring']} | {used} / {sz['dev']} / {sz['test']} | "
            f"{_pct(t['first_option'])} | {_pct(t['none']['dev'])} | {_pct(t['none']['test'])} |"
        )
    return lines


def main_table(results: dict) -> list[str]:
    lines = [
        "| task | variant | K | s | dev (grid passes) | test | Δ vs none [95%] | McNemar p | boot p "
        "| Δ vs 10 random masks [95%] | boot p | masks beaten / lost |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, t in results["tasks"].items():
        for key, v in t["variants"].items():
            c, n = v["chosen"], v["vs_none"]
            rnd = v.get("vs_random")
            r_cells = (
                f"{_diff(rnd)} | {_p(rnd['p_bootstrap'])} | {rnd['beats_masks']} / {rnd['loses_to_masks']}"
                if rnd
                else "– | – | –"
            )
            lines.append(
                f"| {name} | {key} | {c['k']} | {c['s']:g} | {_pct(v['dev'])} ({'yes' if v['dev_passes_test'] else 'no'}) "
                f"| {_pct(v['test'])} | {_diff(n)} | {_p(n['p_mcnemar'])} | {_p(n['p_bootstrap'])} | {r_cells} |"
            )
    return lines


def grids(results: dict) -> list[str]:
    lines = []
    for name, t in results["tasks"].items():
        for key in ("official/head", "official/neuron"):
            v = t["variants"].get(key)
            if not v:
                continue
            ss = sorted({r["s"] for r in v["dev_grid"]})
            ks = sorted({r["k"] for r in v["dev_grid"]})
            cell = {(r["k"], r["s"]): r for r in v["dev_grid"]}
            lines += [
                f"**{name} · {key}** (dev accuracy %, no steering {_pct(t['none']['dev'])})",
                "",
                "| K \\ s | " + " | ".join(f"{s:g}" for s in ss) + " |",
                "|---|" + "---|" * len(ss),
            ]
            for k in ks:
                row = [f"{_pct(cell[(k, s)]['dev'])}" if (k, s) in cell else "–" for s in ss]
                lines.append(f"| {k} | " + " | ".join(row) + " |")
            lines.append("")
        if "config" in t and t["config"]["grid"] != results["config"]["grid"]:
            grid = "; ".join(f"{k}: K {v[0]}, s {v[1]}" for k, v in t["config"]["grid"].items())
            quick = _same_grid(t["config"]["grid"], quick_config(()).grid)
            lines += [f"{name} ran {'the cut grid (`--quick`)' if quick else 'its own grid'}: {grid}.", ""]
        if "sanity_large_s" in t:
            s = t["sanity_large_s"]
            lines += [
                f"{name}: official/head at the paper's large s = {s['s']:g}, K = {s['k']}: dev {_pct(s['dev'])}%.",
                "",
            ]
    return lines


def _same_grid(a: dict, b: dict) -> bool:
    """Grids compare equal whether they came from a JSON (lists) or a StudyConfig (tuples)."""
    return json.loads(json.dumps(a)) == json.loads(json.dumps(b))


def _minutes(results: dict) -> str:
    if not any("config" in t for t in results["tasks"].values()):
        return f"{results.get('seconds', 0) / 60:.0f} min"
    runs = ", ".join(f"{n} {t['seconds'] / 60:.0f}" for n, t in results["tasks"].items() if "seconds" in t)
    return f"tasks from separate runs merged with `--merge`; minutes per task: {runs}"


def verdict(results: dict) -> list[str]:
    out = []
    for name, t in results["tasks"].items():
        win = [
            k
            for k, v in t["variants"].items()
            if v["vs_none"]["p_mcnemar"] < 0.05 and v["vs_none"]["diff"] > 0
        ]
        lose = [
            k
            for k, v in t["variants"].items()
            if v["vs_none"]["p_mcnemar"] < 0.05 and v["vs_none"]["diff"] < 0
        ]
        rnd = [
            k
            for k, v in t["variants"].items()
            if v.get("vs_random") and v["vs_random"]["low"] > 0 and v["vs_random"]["p_bootstrap"] < 0.05
        ]
        out.append(
            f"- {name}: beats no steering on test (McNemar p < 0.05, uncorrected): {', '.join(win) or 'none'}; "
            f"worse than no steering: {', '.join(lose) or 'none'}; beats the mean of 10 random masks: "
            f"{', '.join(rnd) or 'none'}; dev choice passes the Bonferroni paired test: "
            f"{', '.join(k for k, v in t['variants'].items() if v['dev_passes_test']) or 'none'}."
        )
    return out


def markdown(results: dict) -> str:
    model = results["model"]
    head = [
        f"# SADI on {model}: paired tests against no steering and random masks",
        "",
        f"Produced by `steerfast sadi-study --model {model}` ({_minutes(results)}; on a "
        "shared 2-core CPU, 1 thread); `--render-only` rewrites this file from the JSON beside it. "
        "How the tasks, the scoring and the tests work: [evaluation.md](evaluation.md).",
        "",
        "Accuracies in %. s = 1 + δ is the official code's multiplier (A' = s·A on masked units). "
        "K and s are the best dev accuracy of each variant's grid (reported on test whatever the "
        "dev test says); 'grid passes' says whether any setting of the grid beats no steering on "
        "dev by exact McNemar at 0.05 / (grid size) with a positive bootstrap bound — what "
        "`sadi(dev=...)` requires before returning a plan (else it refuses). Tasks run with a "
        "cut grid (`--quick`, for the full-scoring tasks) say so under Dev grids. Test differences are paired (same "
        "items): exact McNemar p and a paired bootstrap (2000 resamples; en_fr resamples query "
        "words, 4 items each) interval and p. Random masks: 10 seeded masks of the same K and s, "
        "compared with the per-item mean of the 10 (bootstrap) and one by one (McNemar, p < 0.05).",
        "",
        "## Tasks",
        "",
        *summary(results),
        "",
        "## Chosen settings on test",
        "",
        *main_table(results),
        "",
        "## Verdict per task",
        "",
        *verdict(results),
        "",
        "## Dev grids",
        "",
        *grids(results),
    ]
    return "\n".join(head) + "\n"


__all__ = ["markdown"]
