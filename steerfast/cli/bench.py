"""`steerfast bench`: run the benchmark matrix, write JSON + Markdown + PNG, check thresholds.

Ratios to the unsteered model from one run (docs/benchmarks.md has the method).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path


def _configure(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument(
        "--quick",
        action="store_true",
        help="the quick matrix (default model, decode b1/b8 16 tokens, prefill 128; < 3 min)",
    )
    p.add_argument(
        "--matrix",
        choices=("quick", "full", "ablation"),
        help="which matrix (default: full, or quick with --quick); ablation = only the "
        "all-layer ablation decode cells, b1 and b8",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when a threshold of steerfast/bench/thresholds.json is crossed",
    )
    p.add_argument(
        "--input", metavar="JSON", help="do not run: load these results (e.g. with --check, or to re-render)"
    )
    p.add_argument(
        "--thresholds", metavar="JSON", help="thresholds file (default steerfast/bench/thresholds.json)"
    )
    p.add_argument(
        "--out", default="benchmarks/results", help="output directory (default benchmarks/results)"
    )
    p.add_argument("--name", help="file stem of the outputs (default: quick or full)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on a shared 2-core machine more threads "
        "oversubscribe and time the scheduler, not the model)",
    )
    p.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        help="which clock the ratios use (default: cpu = the thread's CPU time when "
        "--threads 1, immune to other processes preempting it; else wall)",
    )
    p.add_argument(
        "--reruns",
        type=int,
        default=2,
        help="with --check: re-measure a group whose cell crossed a threshold this many more "
        "times; the violation stands when the cell fails in a majority of the runs (default 2)",
    )
    p.add_argument("--only", metavar="SUBSTR", help="run only the groups whose id contains SUBSTR")
    p.add_argument("--no-profile", action="store_true", help="skip the torch.profiler breakdown")
    p.add_argument(
        "--serve",
        action="store_true",
        help="run the serving benchmark instead (32 concurrent requests, K in {0,1,8,32} "
        "configurations, continuous batching; writes <out>/serve.json and serve.md)",
    )
    p.add_argument("--serve-rounds", type=int, default=3, help="rounds of the serving benchmark")
    p.add_argument("--serve-new", type=int, default=16, help="new tokens per request (serving)")
    return p


def add_parser(sub) -> argparse.ArgumentParser:
    """Add the `bench` subcommand to an argparse subparsers object."""
    p = sub.add_parser(
        "bench",
        help="benchmark steering overhead (ratios vs unsteered, hooks, peers)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _configure(p)
    p.set_defaults(func=run)
    return p


def _run_serve(args) -> int:
    import torch

    from ..bench.serving import markdown
    from ..bench.serving import run as run_serving

    torch.set_num_threads(args.threads)
    res = run_serving(args.serve_rounds, args.serve_new)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "serve.json").write_text(json.dumps(res, indent=1))
    (out / "serve.md").write_text(markdown(res) + "\n")
    print(markdown(res))
    return 0


def run(args) -> int:
    if getattr(args, "serve", False):
        return _run_serve(args)
    from ..bench import load_thresholds
    from ..bench.matrix import MATRICES
    from ..bench.report import write
    from ..bench.runner import run_matrix

    mode = getattr(args, "matrix", None) or ("quick" if args.quick else "full")
    command = (
        "steerfast bench " + " ".join(shlex.quote(a) for a in sys.argv[1:] if a != "bench")
        if sys.argv
        else "steerfast bench"
    )
    if args.input:
        results = json.loads(Path(args.input).read_text())
    else:
        results = run_matrix(
            MATRICES[mode](),
            threads=args.threads,
            mode=mode,
            profile=not args.no_profile,
            profile_steps=4 if args.quick else 8,
            profile_rounds=1 if args.quick else 3,
            only=args.only,
            clock=args.clock,
        )
        results["date"] = time.strftime("%Y-%m-%d %H:%M %Z")
    violations = None
    if args.check:
        from ..bench.recheck import decide

        rerun = None
        if not args.input:
            from ..bench.runner import run_group

            by_id = {g.id: g for g in MATRICES[mode]()}
            clock = args.clock or ("cpu" if args.threads == 1 else "wall")

            def rerun(gid):
                print(f"re-measuring {gid}: a cell crossed its threshold", file=sys.stderr)
                return run_group(by_id[gid], args.threads, clock)

        violations, history = decide(results, load_thresholds(args.thresholds), rerun, args.reruns)
        results["rechecks"] = history
    stem = args.name or (Path(args.input).stem if args.input else mode)
    paths = write(results, args.out, stem, results.get("command") if args.input else command, violations)
    from ..bench.report import ratio_table

    print(ratio_table(results))
    print("\nwrote " + ", ".join(str(p) for p in paths.values()))
    if violations is not None:
        if violations:
            print("\nTHRESHOLDS CROSSED:\n" + "\n".join(f"  {v}" for v in violations))
            return 1
        print("\nall thresholds hold")
    return 0
