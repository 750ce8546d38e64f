"""Markdown tables for `steerfast sadi-study` results (filled in below)."""

from __future__ import annotations


def markdown(results: dict) -> str:
    return "```json\n" + str(results) + "\n```\n"
