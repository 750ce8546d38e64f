"""`steerfast bench --check`'s decision over runs: a cell that crosses its threshold is
re-measured before it is called a violation.

A group whose cell fails the check is run again (`reruns` more times, 2 by default), each
re-run checked on its own; a violation stands only when the same cell (group id + variant)
fails in a majority of the runs (2 of 3). A slowdown that is real fails every run; a median
pushed over the line by one noisy run does not survive a re-measurement. With `--input`
(saved results, nothing to re-run) the single run decides.
"""

from __future__ import annotations

from collections.abc import Callable

from .check import check


def cell_of(violation: str) -> str:
    """'group-id variant' — the part of a violation line before its first colon."""
    return violation.split(":", 1)[0]


def group_of(cell: str, group_ids: list[str]) -> str | None:
    return next((g for g in group_ids if cell == g or cell.startswith(g + " ")), None)


def decide(
    results: dict, thresholds: dict, rerun: Callable[[str], dict] | None, reruns: int = 2
) -> tuple[list[str], dict[str, list[bool]]]:
    """(standing violations, {cell: [failed in run 1, run 2, ...]} for every cell that failed once)."""
    first = check(results, thresholds)
    if not first or rerun is None or reruns <= 0:
        return first, {cell_of(v): [True] for v in first}
    ids = [g["id"] for g in results.get("groups", [])]
    history: dict[str, list[bool]] = {cell_of(v): [True] for v in first}
    lines: dict[str, list[str]] = {cell_of(v): [v] for v in first}
    standing = [v for v in first if group_of(cell_of(v), ids) is None]  # e.g. no cell at all
    groups = sorted({g for c in history if (g := group_of(c, ids)) is not None})
    for gid in groups:
        cells = [c for c in history if group_of(c, ids) == gid]
        for _ in range(reruns):
            again = check({**results, "groups": [rerun(gid)]}, thresholds)
            failed = {cell_of(v): v for v in again}
            for c in cells:
                history[c].append(c in failed)
                if c in failed:
                    lines[c].append(failed[c])
    for c, runs in history.items():
        if group_of(c, ids) is None:
            continue
        if 2 * sum(runs) > len(runs):
            standing.append(f"{lines[c][-1]} [failed {sum(runs)} of {len(runs)} runs]")
    return standing, history


__all__ = ["decide", "cell_of"]
