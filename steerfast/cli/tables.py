"""Rows of a JSONL or CSV data file, with the columns a recipe needs (docs/cli.md)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

from ..errors import SteeringError


class DataFileError(SteeringError):
    """A data file is missing, unreadable, or lacks the columns a recipe needs."""


EXAMPLE = "example:"


def resolve(path: str | Path) -> Path:
    """`example:NAME` is a file shipped in steerfast/data/examples; anything else a path."""
    text = str(path)
    if not text.startswith(EXAMPLE):
        return Path(text)
    from importlib import resources

    return Path(str(resources.files("steerfast.data").joinpath("examples", text[len(EXAMPLE) :])))


def read_rows(path: str | Path, limit: int | None = None) -> list[dict]:
    """Every row of a .jsonl (one JSON object per line) or .csv (header row) file."""
    path = resolve(path)
    if not path.is_file():
        raise DataFileError(f"no data file at {path}")
    if path.suffix not in (".jsonl", ".csv"):
        raise DataFileError(f"{path}: data files are .jsonl or .csv, got {path.suffix or 'no suffix'!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{path} is not UTF-8 text: {exc}") from None
    rows = _jsonl(path, text) if path.suffix == ".jsonl" else _csv(path, text)
    if not rows:
        raise DataFileError(f"{path} has no rows")
    return rows[:limit] if limit else rows


def _jsonl(path: Path, text: str) -> list[dict]:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFileError(f"{path}:{n}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DataFileError(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows


def _csv(path: Path, text: str) -> list[dict]:
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames:
        raise DataFileError(f"{path} has no header row")
    rows = []
    for n, row in enumerate(reader, 2):
        if None in row or None in row.values():
            raise DataFileError(
                f"{path}:{n}: expected {len(reader.fieldnames)} columns ({', '.join(reader.fieldnames)})"
            )
        rows.append(row)
    return rows


def columns(path: str | Path, rows: Sequence[dict], need: Sequence[str], types: dict | None = None) -> None:
    """DataFileError naming the missing column(s) or a wrongly typed value."""
    have = set().union(*(r.keys() for r in rows[:1]))
    missing = [c for c in need if c not in have]
    if missing:
        raise DataFileError(
            f"{path}: missing column(s) {', '.join(missing)}; this command needs "
            f"{', '.join(need)}, the file has {', '.join(sorted(have)) or 'none'}"
        )
    for n, row in enumerate(rows, 1):
        for c in need:
            if c not in row:
                raise DataFileError(f"{path}: row {n} has no {c!r}")
            want = (types or {}).get(c, str)
            if not isinstance(row[c], want):
                raise DataFileError(
                    f"{path}: row {n}: {c!r} must be {_name(want)}, got {type(row[c]).__name__}"
                )
            if want is str and not row[c].strip():
                raise DataFileError(f"{path}: row {n}: {c!r} is empty")


def _name(t) -> str:
    return " or ".join(x.__name__ for x in t) if isinstance(t, tuple) else t.__name__


__all__ = ["DataFileError", "read_rows", "columns"]
