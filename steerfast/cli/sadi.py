"""`steerfast sadi-eval` and `sadi-heatmap`: register steerfast/sadi_cli.py."""

from __future__ import annotations


def add_parser(sub) -> None:
    from .. import sadi_cli

    sadi_cli.add_parser(sub)
    for name in ("sadi-eval", "sadi-heatmap"):
        sub.choices[name].set_defaults(func=sadi_cli.run)
