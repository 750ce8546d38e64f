"""Data rows -> the inputs each recipe takes (formats in docs/cli.md)."""

from __future__ import annotations

from .tables import DataFileError, columns, read_rows


def pairs(path, limit=None) -> list[tuple[str, str]]:
    """(positive, negative) texts: columns positive, negative (ActAdd, CAA)."""
    rows = read_rows(path, limit)
    columns(path, rows, ("positive", "negative"))
    return [(r["positive"], r["negative"]) for r in rows]


def contrastive(path, limit=None) -> list[tuple[str, str]]:
    """SADI's (prompt + right, prompt + wrong): columns positive, negative with an optional
    prompt prefixed to both, or multiple choice: prompt, options (list), answer (index)."""
    rows = read_rows(path, limit)
    if "options" in rows[0]:
        from ..evaluate.multiple_choice import contrastive_pairs

        columns(path, rows, ("prompt",))
        columns(path, rows, ("options", "answer"), {"options": list, "answer": int})
        for n, r in enumerate(rows, 1):
            if len(r["options"]) < 2 or not 0 <= r["answer"] < len(r["options"]):
                raise DataFileError(f"{path}: row {n}: needs >= 2 options and 0 <= answer < len(options)")
        return contrastive_pairs(rows)
    columns(path, rows, ("positive", "negative"))
    if "prompt" in rows[0]:
        columns(path, rows, ("prompt",))
        return [(r["prompt"] + r["positive"], r["prompt"] + r["negative"]) for r in rows]
    return [(r["positive"], r["negative"]) for r in rows]


def demos(path, limit=None) -> list[tuple[str, str]]:
    """LAAI's (prompt, target) demonstrations: columns prompt, target."""
    rows = read_rows(path, limit)
    columns(path, rows, ("prompt", "target"))
    return [(r["prompt"], r["target"]) for r in rows]


def labelled(path, limit=None) -> list[dict]:
    """Condition prompts: columns prompt, label (and optionally split: train / dev / test)."""
    rows = read_rows(path, limit)
    columns(path, rows, ("prompt", "label"))
    return rows
