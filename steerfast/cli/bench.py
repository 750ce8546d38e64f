"""`steerfast bench`: registers steerfast/bench_cli.py."""

from __future__ import annotations


def add_parser(sub) -> None:
    from .. import bench_cli

    bench_cli.add_parser(sub)
    sub.choices["bench"].set_defaults(func=bench_cli.run)
