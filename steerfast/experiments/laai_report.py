"""The LAAI experiment's tables (docs/laai_results*.md) from its JSON: accuracies with Wilson
intervals, and every comparison paired on the same test items (McNemar's exact p and a paired
bootstrap 95% interval of the accuracy difference, evaluate/paired.py)."""

from __future__ import annotations

from ..evaluate.paired import compare
from ..evaluate.stats import Accuracy


def paired(a: str, b: str, groups=None) -> dict:
    """a vs b from per-item outcome strings of '0'/'1' over the same items (evaluate/paired.compare:
    difference a - b, paired-bootstrap 95% interval (by groups when given), exact McNemar p)."""
    r = compare([c == "1" for c in a], [c == "1" for c in b], groups)
    return {"diff": r["diff"], "ci95": [r["low"], r["high"]], "p": r["p_mcnemar"]}


def _acc(correct: int, n: int) -> str:
    return str(Accuracy(correct, n))


def _diff(d: dict) -> str:
    lo, hi = d["ci95"]
    return f"{100 * d['diff']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}], p={d['p']:.2g}"


def markdown(doc: dict) -> str:
    mc = doc.get("suite") == "mc"
    n_seeds = len(doc["seeds"])
    if mc:
        what = (
            "the 55-80% multiple-choice tasks (evaluate/tasks.py, knobs per model); option log-likelihood "
            "with the prefix-cached scorer; 'none' = the task's prompt unsteered, ICL = the same 5 "
            "demonstrations (calib items with their answers, shuffled by the seed) written before the prompt"
        )
        title = f"# LAAI on the multiple-choice tasks ({doc['model']})"
    else:
        what = (
            "the fv_* tasks; exact match of greedy generation; "
            f"format `{doc['format']}`; {doc['demos']} demonstrations per seed (the seed shuffles the train "
            "split; ICL and LAAI use the same ones)"
        )
        title = f"# LAAI on the fv_* tasks ({doc['model']})"
    lines = [
        title,
        "",
        f"Written by `{doc.get('command') or 'steerfast laai-eval'}` in {doc.get('seconds', 0) / 60:.1f} min: "
        f"{what}; {'first ' + str(doc['test_limit']) if doc['test_limit'] else 'all'} test items per task. "
        "Accuracy % with its Wilson 95% interval. Differences are paired on the same items: "
        "points [paired-bootstrap 95% interval], McNemar exact p. LAAI: recipes/laai.py DEFAULTS "
        "(proximal Adam), " + ", ".join(f"{k}={v}" for k, v in doc["laai_defaults"].items()) + ".",
        "",
        f"| task | n | seed | {'none' if mc else 'zero-shot'} | {'ICL (5 demos)' if mc else '5-shot ICL'} | LAAI | heads kept | LAAI − {'none' if mc else 'zero-shot'} | LAAI − ICL |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, t in doc["tasks"].items():
        n, zero, groups = t["n"], t["none" if mc else "zero_shot"], t.get("groups")
        for seed, s in t["seeds"].items():
            la, few = s["laai"], s["icl" if mc else "few_shot"]
            if "no_plan" in la:  # laai() raised: the user gets no plan, i.e. the unsteered model
                lines.append(
                    f"| {name} | {n} | {seed} | {_acc(zero['correct'], n)} | "
                    f"{_acc(few['correct'], n) if few else '—'} | no plan: {_no_plan(la['no_plan'])} | 0 | — | — |"
                )
                continue
            lines.append(
                f"| {name} | {n} | {seed} | {_acc(zero['correct'], n)} | "
                f"{_acc(few['correct'], n) if few else '—'} | "
                f"{_acc(la['correct'], n)} | {la['surviving_heads']}/{la['total_heads']} | "
                f"{_diff(paired(la['outcomes'], zero['outcomes'], groups))} | "
                f"{_diff(paired(la['outcomes'], few['outcomes'], groups)) if few else '—'} |"
            )
    if doc.get("select"):
        lines += [
            "",
            "## LAAI with its setting chosen on dev (seed 0), or refused",
            "",
            f"`laai(..., dev=...)` on {'the first ' + str(doc['dev_limit']) if doc['dev_limit'] else 'all'} dev items: "
            "candidates " + ", ".join(f"{c[0]}" for c in doc["candidates"]) + " (recipes/laai_select.py); a "
            "candidate must beat the unsteered model on dev with McNemar p < 0.05 / (number of "
            "candidates) and a paired interval above 0 (evaluate/selection.py).",
            "",
            "| task | n | dev: unsteered → best candidate | chosen | test: LAAI (chosen) | − unsteered | − ICL (seed 0) |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for name, t in doc["tasks"].items():
            sel, n, groups = t.get("selected"), t["n"], t.get("groups")
            if sel is None:
                continue
            if "refused" in sel:
                lines.append(f"| {name} | {n} | {_refusal(sel['refused'])} | refused: no plan | — | — | — |")
                continue
            s, few = sel["selection"], t["seeds"].get("0", {}).get("icl" if mc else "few_shot")
            row = next(x for x in s["rows"] if x["setting"] == s["chosen"])
            zero = t["none" if mc else "zero_shot"]
            lines.append(
                f"| {name} | {n} | {s['unsteered_correct']} → {row['dev_correct']} / {s['dev_items']} (p={row['p']:.2g}) | "
                f"{s['chosen']} ({sel['surviving_heads']} heads) | {_acc(sel['correct'], n)} | "
                f"{_diff(paired(sel['outcomes'], zero['outcomes'], groups))} | "
                + (_diff(paired(sel["outcomes"], few["outcomes"], groups)) if few else "—")
                + " |"
            )
    lines += ["", f"{n_seeds} seed(s): " + ", ".join(str(s) for s in doc["seeds"]) + "."]
    return "\n".join(lines) + "\n"


def _no_plan(message: str) -> str:
    return "every head zeroed" if "zeroed every head" in message else message.split(":")[0]


def cell_summary(la: dict) -> str:
    """One LAAI cell for a progress line: its score and heads kept, or why there is no plan."""
    if "no_plan" in la:
        return f"no plan ({_no_plan(la['no_plan'])})"
    return f"{la['correct']} heads {la['surviving_heads']}/{la['total_heads']}"


def _refusal(message: str) -> str:
    """The dev numbers of a refusal, without its prose."""
    import re

    base = re.search(r"\(unsteered (\d+/\d+)", message)
    best = re.findall(r"(\S+): (\d+)/(\d+) \(p=([^)]+)\)", message)
    if not base or not best:
        return "refused"
    top = max(best, key=lambda b: int(b[1]))
    return f"{base.group(1)} → {top[1]}/{top[2]} ({top[0]}, p={top[3]})"


__all__ = ["paired", "markdown", "cell_summary"]
