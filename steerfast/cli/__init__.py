"""`steerfast` command line: one module per subcommand, each with `add_parser(sub)` that sets
`func`. Bad input (missing or malformed files, wrong columns, a plan that does not fit the
model) ends with exit code 2 and a one-line message, no traceback."""

from __future__ import annotations

import argparse
import sys

from . import bench, convert, demo, generate, inspect_plan, laai, make, sadi, serve, tune

DESCRIPTION = (
    "Steer Hugging Face causal LMs at inference time: make, convert, inspect and try "
    "steering plans (docs/cli.md)."
)
COMMANDS = (demo, make, convert, inspect_plan, generate, serve, bench, sadi, laai, tune)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="steerfast", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv=None) -> int:
    from ..errors import SteeringError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (SteeringError, OSError) as exc:  # user input: files, columns, models, plans
        print(f"steerfast {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


__all__ = ["main", "build_parser"]
