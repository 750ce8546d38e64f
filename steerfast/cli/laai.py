"""`steerfast laai-eval`: registers steerfast/laai_cli.py."""

from __future__ import annotations


def add_parser(sub) -> None:
    from .. import laai_cli

    laai_cli.add_parser(sub)
    sub.choices["laai-eval"].set_defaults(func=laai_cli.run)
