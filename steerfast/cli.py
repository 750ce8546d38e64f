"""`steerfast` command line."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="steerfast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="steered vs unsteered completions and decode latency")
    demo.add_argument("--model", default="smollm2-135m-instruct")
    demo.add_argument("--prompts", type=int, default=4)
    demo.add_argument("--tokens", type=int, default=32)
    demo.add_argument("--rounds", type=int, default=5)
    from . import bench_cli, laai_cli, sadi_cli

    bench_cli.add_parser(sub)
    sadi_cli.add_parser(sub)
    laai_cli.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        run_demo(args.model, args.prompts, args.tokens, args.rounds)
    elif args.command == "bench":
        return bench_cli.run(args)
    elif args.command in ("sadi-eval", "sadi-heatmap"):
        return sadi_cli.run(args)
    elif args.command == "laai-eval":
        return laai_cli.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
