"""The LAAI experiment (`steerfast laai-eval`): zero-shot, 5-shot ICL and LAAI on the fv_* tasks,
several seeds, paired tests; optionally LAAI with its settings chosen on dev (or refused).

Per task and seed: the seed picks the 5 demonstrations (the train split shuffled by the seed)
and LAAI's initialisation; 5-shot ICL uses the same demonstrations. Scoring is exact match of
greedy generation (evaluate/generation.py) with every item's outcome stored, so every
comparison is paired: McNemar's exact p and a paired-bootstrap 95% interval of the accuracy
difference (experiments/laai_report.py). `--select` adds, for seed 0, `laai(..., dev=...)` on
the first `--dev-limit` dev items: the chosen setting's test row, or the refusal.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


def _limit(items, n):
    return items[:n] if n and n > 0 else items


def bits(flags) -> str:
    return "".join("1" if f else "0" for f in flags)


class Runner:
    """One model, one format; per-item exact match with or without a plan patched in."""

    def __init__(self, model, tok, fmt, batch_size):
        self.model, self.tok, self.fmt, self.batch_size = model, tok, fmt, batch_size

    def outcomes(self, prompts, expected, plan=None, desc="generate") -> list[bool]:
        import steerfast

        from ..evaluate.generation import greedy_completions, is_match

        new = 1 + max(
            len(self.tok(self.fmt.target(y), add_special_tokens=False)["input_ids"]) for y in expected
        )

        def run():
            return greedy_completions(
                self.model, self.tok, prompts, new, self.batch_size, desc, progress=False
            )

        if plan is None:
            completions = run()
        else:
            with steerfast.patch(self.model, plan):
                completions = run()
        return [is_match(c, e) for c, e in zip(completions, expected)]

    def train_pairs(self, demos):
        return [(self.fmt.zero_shot(x), self.fmt.target(y)) for x, y in demos]


def laai_cell(r: Runner, task_name: str, seed: int, n_demos: int, test_limit: int, hyper: dict) -> dict:
    """One LAAI cell from its stored settings (`hyper`: LaaiConfig fields, as the results JSON
    records them): train on the seed's demos, score the test items."""
    from ..errors import PlanError
    from ..evaluate.fv_tasks import load_task
    from ..recipes.laai import LaaiConfig, laai

    task = load_task(task_name, n_demos, seed)
    items = _limit(task.test, test_limit)
    t = time.time()
    try:
        config = LaaiConfig(**hyper)
        plan = laai(r.model, r.tok, r.train_pairs(task.demos), config, seed=seed, progress=False)
    except PlanError as exc:  # e.g. the group lasso zeroed every head: the user gets no plan
        return {"no_plan": str(exc), "seconds": time.time() - t}
    got = r.outcomes([r.fmt.zero_shot(x) for x, _ in items], [y for _, y in items], plan, f"{task_name} LAAI")
    m = plan.meta
    return {
        "outcomes": bits(got),
        "correct": sum(got),
        "surviving_heads": m["surviving_heads"],
        "total_heads": m["total_heads"],
        "surviving_layers": m["surviving_layers"],
        "training": m["training"],
        "seconds": time.time() - t,
    }


def _task(r: Runner, name: str, args) -> dict:
    from ..evaluate.fv_tasks import load_task
    from ..recipes.laai import LaaiConfig, laai
    from ..recipes.laai_select import NoGainError
    from .laai_report import cell_summary

    hyper = LaaiConfig().as_dict()
    base = load_task(name, args.demos, 0)
    items = _limit(base.test, args.test_limit)
    prompts, expected = [r.fmt.zero_shot(x) for x, _ in items], [y for _, y in items]
    t = time.time()
    zero = r.outcomes(prompts, expected, desc=f"{name} zero-shot")
    out = {
        "n": len(items),
        "zero_shot": {"outcomes": bits(zero), "correct": sum(zero), "seconds": time.time() - t},
    }
    out["seeds"] = {}
    for seed in args.seeds:
        task = load_task(name, args.demos, seed)
        t = time.time()
        few = r.outcomes(
            [r.fmt.few_shot(task.demos, x) for x, _ in items], expected, desc=f"{name} ICL s{seed}"
        )
        row = {
            "demos": task.demos,
            "few_shot": {"outcomes": bits(few), "correct": sum(few), "seconds": time.time() - t},
        }
        row["laai"] = laai_cell(r, name, seed, args.demos, args.test_limit, hyper)
        out["seeds"][str(seed)] = row
        got = cell_summary(row["laai"])
        print(f"{name} seed {seed}: zero {sum(zero)} ICL {sum(few)} LAAI {got} / {len(items)}", flush=True)
    if args.select:
        t = time.time()
        dev = [(r.fmt.zero_shot(x), r.fmt.target(y)) for x, y in _limit(base.dev, args.dev_limit)]
        try:
            plan = laai(r.model, r.tok, r.train_pairs(base.demos), dev=dev, seed=0, progress=False)
        except NoGainError as exc:
            out["selected"] = {"refused": str(exc), "seconds": time.time() - t}
        else:
            got = r.outcomes(prompts, expected, plan, f"{name} LAAI chosen")
            sel = plan.meta["selection"]
            out["selected"] = {"outcomes": bits(got), "correct": sum(got), "selection": sel,
                               "surviving_heads": plan.meta["surviving_heads"], "seconds": time.time() - t}  # fmt: skip
        print(
            f"{name} dev choice: {out['selected'].get('refused') or out['selected']['selection']['chosen']}",
            flush=True,
        )
    return out


def run(args) -> int:
    import torch

    from ..evaluate.fv_tasks import get_format
    from ..models import load
    from ..recipes.laai import LaaiConfig
    from ..recipes.laai_select import CANDIDATES
    from .laai_report import markdown

    out = Path(args.out)
    if args.render:
        out.write_text(markdown(json.loads(out.with_suffix(".json").read_text())))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.time()
    model, tok = load(args.model)
    tok.padding_side = "left"
    r = Runner(model, tok, get_format(args.format), args.batch_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "model": args.model,
        "format": args.format,
        "demos": args.demos,
        "test_limit": args.test_limit,
        "dev_limit": args.dev_limit,
        "seeds": list(args.seeds),
        "select": bool(args.select),
        "laai_defaults": LaaiConfig().as_dict(),
        "candidates": [list(c) for c in CANDIDATES],
        "command": args.command_line,
        "tasks": {},
    }
    doc["suite"] = args.suite
    for name in args.tasks:
        if args.suite == "mc":
            from .laai_mc import run_task

            doc["tasks"][name] = run_task(model, tok, args.model, name, args)
        else:
            doc["tasks"][name] = _task(r, name, args)
        doc["seconds"] = time.time() - start  # written after every task: a partial run keeps its rows
        out.with_suffix(".json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        out.write_text(markdown(doc))
    print(out.read_text())
    return 0


__all__ = ["run", "Runner", "laai_cell", "bits"]
