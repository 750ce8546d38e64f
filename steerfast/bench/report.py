"""Writing a results dict as JSON, a Markdown report and a PNG chart."""

from __future__ import annotations

import json
import math
from pathlib import Path

from .peers import PEERS
from .plans import SITE_CONFIGS

COLUMNS = ("hooks", "reference", "fused", "bank") + PEERS


def _ms(x) -> str:
    return "—" if x is None else f"{1000 * x:.2f}"


def _cell(row) -> str:
    if row is None:
        return "—"
    if row.get("status") != "ok":
        return row.get("status", "?")
    r = row.get("ratio")
    return "—" if r is None else f"{r:.3f}"


def _fmt(x, spec=".3f") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return format(x, spec)


def _group_title(g) -> str:
    what = (
        f"prefill {g.get('length')} tokens"
        if g.get("phase") == "prefill"
        else f"decode {g.get('length')} tokens after a {g.get('prompt', '?')}-token prompt"
    )
    return f"{g.get('model')}, {what}, batch {g.get('batch')}, {g.get('engine')}"


def ratio_table(results: dict) -> str:
    head = "| group | sites | unsteered (ms) | noise | " + " | ".join(COLUMNS) + " | fused ÷ hooks |"
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for g in results.get("groups", []):
        if g.get("error"):
            lines.append(f"| {g['id']} | — | error: {g['error']} |" + " |" * (len(COLUMNS) + 1))
            continue
        base = g["variants"].get("unsteered", {})
        for s in SITE_CONFIGS:
            cells = [g["variants"].get(f"{k}[{s}]") for k in COLUMNS]
            if all(c is None for c in cells):
                continue
            fused = g["variants"].get(f"fused[{s}]") or {}
            lines.append(
                f"| {g['id']} | {s} | {_ms(base.get('median'))} | "
                f"{_fmt(g.get('noise'))} | "
                + " | ".join(_cell(c) for c in cells)
                + f" | {_fmt(fused.get('ratio_vs_hooks'))} |"
            )
    return "\n".join(lines)


def detail_tables(results: dict) -> str:
    out = []
    for g in results.get("groups", []):
        out.append(f"### {g['id']}: {_group_title(g)}\n")
        if g.get("error"):
            out.append(f"error: {g['error']}\n")
            continue
        out.append(
            f"{g.get('rounds')} interleaved rounds ({g.get('unit')}), {g.get('warmup')} warm-up; "
            f"noise {_fmt(g.get('noise'))}; wall {g.get('wall_s')} s\n"
        )
        out.append(
            f"| variant | median (ms, {g.get('clock', 'wall')}) | min–max (ms) | ÷ unsteered | ÷ hooks "
            "| ÷ unsteered (wall clock) | max abs Δ logits vs hooks | note |"
        )
        out.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, r in g["variants"].items():
            note = r.get("reason", "")
            if "compile_s" in r:
                note = f"compile {r['compile_s']} s " + note
            if "max_abs_diff_vs_fused" in r:
                note = f"max abs Δ vs fused patch {r['max_abs_diff_vs_fused']:.2e} " + note
            if "realisations" in r:
                note = "modules fast/wrapped {fast}/{wrapped} ".format(**r["realisations"]) + note
            if r.get("status") != "ok":
                out.append(f"| {name} | {r.get('status')} | | | | | | {note} |")
                continue
            diff = r.get("max_abs_diff_vs_hooks")
            out.append(
                f"| {name} | {_ms(r.get('median'))} | {_ms(r.get('min'))}–{_ms(r.get('max'))} | "
                f"{_fmt(r.get('ratio'))} | {_fmt(r.get('ratio_vs_hooks'))} | "
                f"{_fmt((r.get('wall') or {}).get('ratio'))} | {_fmt(diff, '.2e')} | {note} |"
            )
        out.append("")
    return "\n".join(out)


def not_ahead(results: dict) -> list[str]:
    """Cells where fused is not faster than hooks (ratio >= 1), with the group's noise."""
    lines = []
    for g in results.get("groups", []):
        for name, r in g.get("variants", {}).items():
            if r.get("kind") != "fused" or r.get("status") != "ok" or "ratio_vs_hooks" not in r:
                continue
            if r["ratio_vs_hooks"] >= 1.0:
                within = r["ratio_vs_hooks"] - 1 <= (g.get("noise") or 0)
                lines.append(
                    f"- {g['id']} {name}: fused ÷ hooks = {r['ratio_vs_hooks']:.3f} "
                    f"({'within' if within else 'beyond'} the group's noise "
                    f"{_fmt(g.get('noise'))})"
                )
    return lines


def breakdown_table(bd: dict) -> str:
    if not bd or bd.get("error"):
        return f"breakdown failed: {bd.get('error') if bd else 'not run'}"
    lines = [
        f"Decode, batch 1, {bd['steps']} profiled steps per variant x {bd['rounds']} rounds "
        f"(median self time), after a {bd['prompt']}-token prompt; default model.\n",
        "| variant | sites | ops/token | added ops/token | added ops/site | "
        "added µs/token | added µs/site | steerfast:: op µs/call | ops added per token (top) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in bd["variants"].items():
        if r.get("status") != "ok":
            lines.append(f"| {name} | {r.get('status')}: {r.get('reason', '')} | | | | | | | |")
            continue
        top = ", ".join(
            f"{k.replace('aten::', '')} +{v:g}" for k, v in (r.get("top_added_ops") or {}).items()
        )
        lines.append(
            f"| {name} | {r.get('sites', 0)} | {r['ops_per_token']:.0f} | "
            f"{_fmt(r.get('added_ops_per_token'), '.0f')} | {_fmt(r.get('added_ops_per_site'), '.1f')} | "
            f"{_fmt(r.get('added_us_per_token'), '.0f')} | "
            f"{_fmt(r.get('added_us_per_site'), '.1f')} | {_fmt(r.get('steer_op_us_per_call'), '.1f')} | {top} |"
        )
    return "\n".join(lines)


def timing_breakdown(results: dict) -> str:
    lines = []
    for g in results.get("groups", []):
        if g.get("phase") != "decode" or g.get("engine") != "eager" or g.get("error"):
            continue
        base = g["variants"].get("unsteered", {}).get("median")
        if not base:
            continue
        for name, r in g["variants"].items():
            if r.get("status") != "ok" or not r.get("sites") or "ratio" not in r:
                continue
            us = (r["ratio"] - 1.0) * base * 1e6
            lines.append(f"| {g['id']} | {name} | {us:.0f} | {100 * (r['ratio'] - 1):+.1f}% |")
    if not lines:
        return ""
    return "\n".join(["| group | variant | added µs/token | added % |", "| --- | --- | --- | --- |"] + lines)


def machine_text(m: dict) -> str:
    cpu = m.get("lscpu", {})
    parts = [
        f"- CPU: {cpu.get('Model name', '?')}, {cpu.get('CPU(s)', '?')} CPU(s) "
        f"({cpu.get('Core(s) per socket', '?')} cores/socket, {cpu.get('Thread(s) per core', '?')} "
        f"thread/core), {cpu.get('Hypervisor vendor', 'bare metal')} guest; ISA {cpu.get('isa', '?')}; "
        f"L2 {cpu.get('L2 cache', '?')}, L3 {cpu.get('L3 cache', '?')}",
        f"- torch {m.get('torch')}, transformers {m.get('transformers', '?')}, Python {m.get('python')}, "
        f"torch threads {m.get('threads')}",
        f"- load average at start {' '.join(m.get('loadavg_start', []))}, at end "
        f"{' '.join(m.get('loadavg_end', []))} (the machine is shared with other jobs)",
    ]
    return "\n".join(parts)


def markdown(results: dict, command: str = "", violations=None) -> str:
    out = [f"# steerfast benchmark ({results.get('mode')})\n"]
    if command:
        out.append(
            f"Command: `{command}`  \nDate: {results.get('date', '?')}; total wall time "
            f"{results.get('wall_s')} s\n"
        )
    out.append("## Machine\n\n" + machine_text(results.get("machine", {})) + "\n")
    out.append("## Models\n")
    for k, v in results.get("models", {}).items():
        out.append(f"- `{k}`: {v}")
    fused = results.get("fused", {})
    out.append(
        f"\nFused ops: {'available' if fused.get('available') else 'MISSING: ' + fused.get('reason', '')}. "
        f"SteeringBank: {'available' if results.get('bank', {}).get('available') else 'MISSING'}.\n"
    )
    out.append("## Ratios: median ÷ median of the unsteered model in the same group\n")
    clock = results.get("clock", "wall")
    out.append(
        f"Clock: **{clock}**"
        + (
            " (time.thread_time of the single torch thread: the forward's "
            "own CPU time, so other processes preempting it do not count; wall-clock ratios are "
            "in the details and the JSON)"
            if clock == "cpu"
            else " (time.perf_counter)"
        )
        + ".\n"
    )
    out.append(
        "Each group's variants run side by side in one process, interleaved round by round "
        "(warm-up first). `noise` = the spread of the repeated unsteered rounds "
        "(max of IQR/median of unsteered and of unsteered#2, and their A/A gap). "
        "`missing` = not available in this build (never replaced by another variant); "
        "`—` = not in this matrix.\n"
    )
    out.append(ratio_table(results) + "\n")
    lines = not_ahead(results)
    out.append("## Where fused is not ahead of hooks\n")
    out.append("\n".join(lines) if lines else "Fused is ahead of hooks in every cell measured.")
    out.append("")
    if violations is not None:
        out.append("## Check against steerfast/bench/thresholds.json\n")
        out.append("\n".join(f"- FAIL {v}" for v in violations) if violations else "All thresholds hold.")
        out.append("")
    out.append("## Per-token cost breakdown (torch.profiler)\n")
    out.append(breakdown_table(results.get("breakdown", {})) + "\n")
    timed = timing_breakdown(results)
    if timed:
        out.append(
            "Added time per token from the interleaved timings (ground truth for wall cost; "
            "(ratio - 1) x unsteered median):\n"
        )
        out.append(timed + "\n")
    out.append("## Peers\n")
    for name, st in results.get("peers", {}).items():
        out.append(
            f"- {name} {st.get('version', '')}: "
            + ("importable" if st.get("available") else f"not available ({st.get('reason')})")
        )
    if results.get("not_in_matrix"):
        out.append("\n## Not in the matrix\n")
        for what, why in results["not_in_matrix"]:
            out.append(f"- {what}: {why}")
    out.append("\n## Details\n")
    out.append(detail_tables(results))
    return "\n".join(out) + "\n"


def chart(results: dict, path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:
        return False
    groups = [g for g in results.get("groups", []) if g.get("variants") and not g.get("error")]
    if not groups:
        return False
    cols = 2 if len(groups) > 1 else 1
    rows = math.ceil(len(groups) / cols)
    heights = [
        sum(1 for n, r in g["variants"].items() if r.get("status") == "ok" and n != "unsteered")
        for g in groups
    ]
    fig, axes = plt.subplots(
        rows, cols, figsize=(7 * cols, max(3.0, 0.28 * max(heights) + 1.2) * rows), squeeze=False
    )
    colors = {
        "hooks": "#999999",
        "reference": "#6fa8dc",
        "fused": "#0b5394",
        "bank": "#38761d",
        "unsteered#2": "#cccccc",
        "steering-vectors": "#e69138",
        "repeng": "#cc0000",
    }
    for ax, g in zip(axes.flat, groups):
        names = [
            n
            for n, r in g["variants"].items()
            if r.get("status") == "ok" and n != "unsteered" and "ratio" in r
        ]
        ratios = [g["variants"][n]["ratio"] for n in names]
        ax.barh(
            range(len(names)), ratios, color=[colors.get(g["variants"][n]["kind"], "#444444") for n in names]
        )
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels(names, fontsize=7)
        ax.invert_yaxis()
        ax.axvline(1.0, color="black", lw=0.8)
        noise = g.get("noise")
        if noise and noise == noise:
            ax.axvspan(1 - noise, 1 + noise, color="#eeeeee", lw=0, zorder=0)
        lo = min(ratios + [1.0]) if ratios else 0.9
        hi = max(ratios + [1.0]) if ratios else 1.1
        pad = max(0.02, 0.1 * (hi - lo))
        ax.set_xlim(max(0.0, lo - pad), hi + pad)
        ax.set_title(g["id"], fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel("median ÷ unsteered median (grey band: noise)", fontsize=7)
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(results: dict, out_dir, stem: str, command: str = "", violations=None) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{stem}.json", "md": out / f"{stem}.md", "png": out / f"{stem}.png"}
    results = dict(results, command=command)
    paths["json"].write_text(json.dumps(results, indent=1, default=str) + "\n")
    paths["md"].write_text(markdown(results, command, violations))
    if not chart(results, paths["png"]):
        paths.pop("png")
    return paths


__all__ = ["write", "markdown", "chart", "ratio_table", "breakdown_table", "not_ahead"]
