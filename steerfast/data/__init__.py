"""Small datasets shipped with the package (see README.md in this folder for provenance)."""

from __future__ import annotations

import json
from importlib import resources


def load_jsonl(name: str, split: str | None = None) -> list[dict]:
    """Rows of `<name>.jsonl` shipped in steerfast/data, optionally only one split."""
    path = resources.files(__package__).joinpath(f"{name}.jsonl")
    if not path.is_file():
        raise FileNotFoundError(f"no shipped dataset {name!r} ({path})")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if split is None or r.get("split") == split]


def sentiment_pairs() -> list[tuple[str, str]]:
    return [(r["positive"], r["negative"]) for r in load_jsonl("sentiment_pairs")]


def neutral_prompts() -> list[str]:
    return [r["prompt"] for r in load_jsonl("neutral_prompts")]
