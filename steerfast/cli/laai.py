"""`steerfast laai-eval`: the LAAI experiment (steerfast/experiments/laai.py)."""

from __future__ import annotations


def add_parser(sub):
    from ..evaluate.fv_tasks import DEFAULT_FORMAT, TASKS

    p = sub.add_parser("laai-eval", help="LAAI vs zero-shot, few-shot ICL and CAA on the fv_* tasks")
    p.add_argument(
        "--out", default="docs/laai_results.md", help="markdown table (a .json is written beside it)"
    )
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    p.add_argument("--demos", type=int, default=5)
    p.add_argument("--test-limit", type=int, default=0, help="first N test items per task (0 = all)")
    p.add_argument("--dev-limit", type=int, default=20, help="first N dev items per task for CAA selection")
    p.add_argument("--format", default=DEFAULT_FORMAT)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--render", action="store_true", help="only rewrite --out from its existing .json")
    p.add_argument(
        "--sweep",
        action="store_true",
        help="instead: score the LAAI settings in SWEEP on the dev split, write --out",
    )
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..experiments.laai import run as run_experiment

    return run_experiment(args)
