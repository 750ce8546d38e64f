"""`steerfast laai-eval`: the LAAI experiment (steerfast/experiments/laai.py)."""

from __future__ import annotations


def add_parser(sub):
    from ..evaluate.fv_tasks import DEFAULT_FORMAT, TASKS

    p = sub.add_parser("laai-eval", help="LAAI vs zero-shot and 5-shot ICL on the fv_* tasks (paired tests)")
    p.add_argument(
        "--out", default="docs/laai_results.md", help="markdown table (a .json is written beside it)"
    )
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    p.add_argument("--demos", type=int, default=5)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--test-limit", type=int, default=0, help="first N test items per task (0 = all)")
    p.add_argument(
        "--select", action="store_true", help="also laai(..., dev=...) for seed 0: chosen or refused"
    )
    p.add_argument("--dev-limit", type=int, default=40, help="first N dev items per task for --select")
    p.add_argument("--format", default=DEFAULT_FORMAT)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--render", action="store_true", help="only rewrite --out from its existing .json")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import shlex
    import sys

    from ..experiments.laai import run as run_experiment

    args.command_line = "steerfast " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return run_experiment(args)
