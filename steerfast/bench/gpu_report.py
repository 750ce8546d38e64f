"""Markdown of `python -m steerfast.bench.gpu` results (the JSON has every number)."""

from __future__ import annotations


def _fmt(v, nd=3):
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def render(res: dict) -> str:
    m = res.get("machine", {})
    lines = [
        f"# GPU run ({res.get('mode')})",
        "",
        f"torch {m.get('torch')}, transformers {m.get('transformers')}, triton {m.get('triton')}, "
        f"device {m.get('gpu', m.get('device'))}; Triton kernels: {m.get('triton_kernels')}. "
        f"Total {res.get('wall_s')} s.",
        "",
    ]
    for name, sec in res.get("sections", {}).items():
        lines += [f"## {name}: {sec.get('status')} ({sec.get('wall_s')} s of {sec.get('budget_s')} s)", ""]
        if "error" in sec:
            lines += ["```", sec["error"], "```", ""]
            continue
        r = sec.get("result", {})
        if name == "kernels":
            lines += [f"`{r.get('command')}`: {r.get('summary')}", ""]
        elif name == "ops":
            lines += ["| op | dtype | M | D | ms (median per call) | fused ÷ cuBLAS | fused ÷ reference |"]
            lines += ["| --- | --- | --- | --- | --- | --- | --- |"]
            for row in r.get("rows", []):
                if "error" in row:
                    lines.append(f"| {row['cell']} | error: {row['error']} | | | | | |")
                    continue
                ms = ", ".join(f"{k} {v:.4f}" for k, v in row["ms"].items())
                lines.append(
                    f"| {row['op']} | {row['dtype']} | {row['M']} | {row['D']} | {ms} | "
                    f"{_fmt(row.get('fused_vs_cublas', '—'))} | {_fmt(row['fused_vs_reference'])} |"
                )
            lines.append("")
        elif name == "decode":
            lines += [
                "| model | engine | batch | variant | ms/token | ÷ unsteered | graphs (warm-up / recompiles timed) | max Δ vs hooks | note |"
            ]
            lines += ["| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
            for c in r.get("cells", []):
                head = f"| {c['model']} | {c['engine']} | {c['batch']}"
                if "error" in c:
                    lines.append(f"{head} | — | | | | | error: {c['error'][:200]} |")
                    continue
                for v, row in c.get("variants", {}).items():
                    lines.append(
                        f"{head} | {v} | {_fmt(row.get('median_ms', '—'))} | {_fmt(row.get('ratio', '—'))} | "
                        f"{row.get('graphs_at_warmup', '')} / {row.get('recompiles_timed', '')} | {_fmt(row.get('max_abs_diff_vs_hooks', ''), 4)} | "
                        f"{row.get('error', '')[:120]} |"
                    )
            weights = sorted({c.get("weights", "") for c in r.get("cells", []) if c.get("weights")})
            lines += ["", "Weights: " + "; ".join(weights) + "."]
            if r.get("skipped_budget"):
                lines.append(f"Skipped (section budget spent): {r['skipped_budget']}")
            lines.append("")
        if name == "ops" and r.get("skipped_budget"):
            lines += [f"Skipped (section budget spent): {r['skipped_budget']}", ""]
    return "\n".join(lines) + "\n"


__all__ = ["render"]
