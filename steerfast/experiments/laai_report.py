"""The LAAI experiment's tables (docs/laai_results*.md) from its JSON: accuracies with Wilson
intervals, and every comparison paired on the same test items (McNemar's exact p and a paired
bootstrap 95% interval of the accuracy difference, 2000 resamples, fixed seed)."""

from __future__ import annotations

import random

from ..evaluate.stats import Accuracy
from ..recipes.laai_select import mcnemar_p


def paired(a: str, b: str, resamples: int = 2000, seed: int = 0) -> dict:
    """a vs b, per-item outcome strings of '0'/'1' over the same items: difference of accuracies
    (a - b), its paired-bootstrap 95% interval and the exact McNemar p."""
    if len(a) != len(b) or not a:
        raise ValueError("paired outcomes need the same, non-zero number of items")
    x = [int(u) - int(v) for u, v in zip(a, b)]
    n = len(x)
    rng = random.Random(seed)
    diffs = sorted(sum(x[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    only_a = sum(d == 1 for d in x)
    only_b = sum(d == -1 for d in x)
    return {
        "diff": sum(x) / n,
        "ci95": [diffs[int(0.025 * resamples)], diffs[int(0.975 * resamples) - 1]],
        "only_a": only_a,
        "only_b": only_b,
        "p": mcnemar_p(only_a, only_b),
    }


def _acc(correct: int, n: int) -> str:
    return str(Accuracy(correct, n))


def _diff(d: dict) -> str:
    lo, hi = d["ci95"]
    return f"{100 * d['diff']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}], p={d['p']:.2g}"


def markdown(doc: dict) -> str:
    n_seeds = len(doc["seeds"])
    lines = [
        f"# LAAI on the fv_* tasks ({doc['model']})",
        "",
        f"Written by `{doc.get('command') or 'steerfast laai-eval'}` in {doc.get('seconds', 0) / 60:.1f} min. "
        "Exact match of greedy generation; accuracy % with its Wilson 95% interval; "
        f"{'first ' + str(doc['test_limit']) if doc['test_limit'] else 'all'} test items per task; "
        f"format `{doc['format']}`; {doc['demos']} demonstrations per seed (the seed shuffles the train "
        "split; ICL and LAAI use the same ones). Differences are paired on the same items: "
        "points [paired-bootstrap 95% interval], McNemar exact p. LAAI: recipes/laai.py DEFAULTS "
        "(proximal Adam), " + ", ".join(f"{k}={v}" for k, v in doc["laai_defaults"].items()) + ".",
        "",
        "| task | n | seed | zero-shot | 5-shot ICL | LAAI | heads kept | LAAI − zero-shot | LAAI − ICL |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, t in doc["tasks"].items():
        n, zero = t["n"], t["zero_shot"]
        for seed, s in t["seeds"].items():
            la, few = s["laai"], s["few_shot"]
            lines.append(
                f"| {name} | {n} | {seed} | {_acc(zero['correct'], n)} | {_acc(few['correct'], n)} | "
                f"{_acc(la['correct'], n)} | {la['surviving_heads']}/{la['total_heads']} | "
                f"{_diff(paired(la['outcomes'], zero['outcomes']))} | {_diff(paired(la['outcomes'], few['outcomes']))} |"
            )
    if doc.get("select"):
        lines += [
            "",
            "## LAAI with its setting chosen on dev (seed 0), or refused",
            "",
            f"`laai(..., dev=first {doc['dev_limit']} dev items)`: candidates "
            + ", ".join(f"{c[0]}" for c in doc["candidates"])
            + " (recipes/laai_select.py); a candidate must beat the unsteered model on dev with McNemar "
            "p <= 0.05 / (number of candidates).",
            "",
            "| task | n | dev: unsteered → chosen | chosen | test: LAAI (chosen) | − zero-shot | − ICL (seed 0) |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for name, t in doc["tasks"].items():
            sel, n = t.get("selected"), t["n"]
            if sel is None:
                continue
            if "refused" in sel:
                lines.append(f"| {name} | {n} | refused: {sel['refused']} | — | no plan | — | — |")
                continue
            s, few = sel["selection"], t["seeds"].get("0", {}).get("few_shot")
            row = next(x for x in s["rows"] if x["setting"] == s["chosen"])
            lines.append(
                f"| {name} | {n} | {s['unsteered_correct']} → {row['dev_correct']} / {s['dev_items']} (p={row['p']:.2g}) | "
                f"{s['chosen']} ({sel['surviving_heads']} heads) | {_acc(sel['correct'], n)} | "
                f"{_diff(paired(sel['outcomes'], t['zero_shot']['outcomes']))} | "
                + (_diff(paired(sel["outcomes"], few["outcomes"])) if few else "—")
                + " |"
            )
    lines += ["", f"{n_seeds} seed(s): " + ", ".join(str(s) for s in doc["seeds"]) + "."]
    return "\n".join(lines) + "\n"


__all__ = ["paired", "markdown"]
