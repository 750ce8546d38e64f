"""`steerfast laai-eval`: the LAAI experiment (steerfast/experiments/laai.py)."""

from __future__ import annotations


def add_parser(sub):
    from ..evaluate.fv_tasks import DEFAULT_FORMAT, TASKS
    from ..evaluate.tasks import TASKS as MC_TASKS

    p = sub.add_parser("laai-eval", help="LAAI vs zero-shot and 5-shot ICL on the fv_* tasks (paired tests)")
    p.add_argument(
        "--out", default="docs/laai_results.md", help="markdown table (a .json is written beside it)"
    )
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument(
        "--suite",
        choices=("fv", "mc"),
        default="fv",
        help="fv: the function-vector generation tasks; mc: the 55-80%% multiple-choice tasks (evaluate/tasks.py)",
    )
    p.add_argument(
        "--tasks", nargs="+", default=None, help=f"fv: {' '.join(TASKS)}; mc: {' '.join(MC_TASKS)}"
    )
    p.add_argument("--demos", type=int, default=5)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--test-limit", type=int, default=0, help="first N test items per task (0 = all)")
    p.add_argument(
        "--select", action="store_true", help="also laai(..., dev=...) for seed 0: chosen or refused"
    )
    p.add_argument(
        "--dev-limit", type=int, default=0, help="first N dev items per task for --select (0: fv 40, mc all)"
    )
    p.add_argument("--format", default=DEFAULT_FORMAT)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--render", action="store_true", help="only rewrite --out from its existing .json")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import shlex
    import sys

    from ..errors import SteeringError
    from ..evaluate.fv_tasks import TASKS
    from ..evaluate.tasks import TASKS as MC_TASKS
    from ..experiments.laai import run as run_experiment

    known = MC_TASKS if args.suite == "mc" else TASKS
    args.tasks = list(args.tasks or known)
    bad = [t for t in args.tasks if t not in known]
    if bad:
        raise SteeringError(f"unknown {args.suite} task(s) {bad}; expected some of {', '.join(known)}")
    if not args.dev_limit and args.suite == "fv":
        args.dev_limit = 40
    args.command_line = "steerfast " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return run_experiment(args)
