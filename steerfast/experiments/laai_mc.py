"""LAAI on the 55-80% multiple-choice tasks (evaluate/tasks.py): `steerfast laai-eval --suite mc`.

Per task (knobs per model from experiments/sadi_study.KNOBS, so the unsteered model sits near
55-80%) and seed: 5 demonstrations = 5 calib items (shuffled by the seed), each (prompt, its
correct option); LAAI (recipes/laai_config.py LaaiConfig()) trains on them. Conditions, all scored on the
same test items with the prefix-cached scorer (evaluate/fast.py):
  none      the task's prompt, unsteered (the prompts already hold the task's own shots)
  ICL       the 5 demonstrations written before the prompt, unsteered (first seed only: ~6x
            longer prompts)
  LAAI      the task's prompt, the LAAI plan patched in
With --select, seed 0 also runs laai(..., dev=the dev split): the chosen setting or the refusal.
Comparisons are paired (evaluate/paired.compare; en_fr resamples query words as groups).
"""

from __future__ import annotations

import random
import time


def icl_items(items: list[dict], demos: list[tuple[str, str]]) -> list[dict]:
    context = "\n\n".join(p + t for p, t in demos) + "\n\n"
    return [dict(it, prompt=context + it["prompt"]) for it in items]


def _bits(t) -> str:
    return "".join("1" if bool(x) else "0" for x in t)


def run_task(model, tok, model_name: str, name: str, args, log=print) -> dict:
    from ..errors import PlanError
    from ..evaluate.fast import PrefixScorer
    from ..evaluate.tasks import build
    from ..recipes.laai import LaaiConfig, laai
    from ..recipes.laai_select import NoGainError
    from .laai_report import cell_summary
    from .sadi_study import KNOBS

    t0 = time.time()
    task = build(name, tok, **KNOBS.get(model_name, {}).get(name, {}))
    test = task["test"][: args.test_limit] if args.test_limit else task["test"]
    dev_items = task["dev"][: args.dev_limit] if args.dev_limit else task["dev"]
    scorer = PrefixScorer(model, tok, test, task.scoring)
    none = scorer.correct()
    out = {
        "knobs": task.knobs,
        "scoring": task.scoring,
        "n": len(test),
        "groups": [it["group"] for it in test] if name == "en_fr" else None,
        "none": {"outcomes": _bits(none), "correct": int(none.sum())},
        "seeds": {},
    }
    log(f"[{model_name}/{name}] none {int(none.sum())}/{len(test)} ({time.time() - t0:.0f}s)")
    for seed in args.seeds:
        calib = list(task["calib"])
        random.Random(seed).shuffle(calib)
        demos = [(it["prompt"], it["options"][it["answer"]]) for it in calib[: args.demos]]
        icl, t = None, time.time()
        if seed == args.seeds[0]:  # ICL prompts are ~6x longer: scored for the first seed only
            icl = PrefixScorer(model, tok, icl_items(test, demos), task.scoring).correct()
        t_icl = time.time() - t
        t = time.time()
        try:
            plan = laai(model, tok, demos, seed=seed, progress=False)
        except PlanError as exc:  # e.g. the group lasso zeroed every head: the user gets no plan
            la = {"no_plan": str(exc), "seconds": time.time() - t}
        else:
            got, m = scorer.correct(plan), plan.meta
            la = {"outcomes": _bits(got), "correct": int(got.sum()), "surviving_heads": m["surviving_heads"],
                  "total_heads": m["total_heads"], "training": m["training"], "seconds": time.time() - t}  # fmt: skip
        out["seeds"][str(seed)] = {
            "demos": demos,
            "icl": None
            if icl is None
            else {"outcomes": _bits(icl), "correct": int(icl.sum()), "seconds": t_icl},
            "laai": la,
        }
        log(f"[{model_name}/{name}] seed {seed}: ICL {'-' if icl is None else int(icl.sum())} LAAI {cell_summary(la)} / {len(test)} "
            f"({time.time() - t0:.0f}s)")  # fmt: skip
    if args.select:
        calib = list(task["calib"])
        random.Random(0).shuffle(calib)
        demos = [(it["prompt"], it["options"][it["answer"]]) for it in calib[: args.demos]]
        t = time.time()
        dev = PrefixScorer(model, tok, dev_items, task.scoring)
        try:
            plan = laai(model, tok, demos, dev=dev.correct, seed=0, progress=False)
        except NoGainError as exc:
            out["selected"] = {"refused": str(exc), "seconds": time.time() - t}
        else:
            got = scorer.correct(plan)
            out["selected"] = {"outcomes": _bits(got), "correct": int(got.sum()),
                               "selection": plan.meta["selection"],
                               "surviving_heads": plan.meta["surviving_heads"], "seconds": time.time() - t}  # fmt: skip
        log(
            f"[{model_name}/{name}] dev choice: {out['selected'].get('refused') or out['selected']['selection']['chosen']}"
        )
    out["laai_defaults"] = LaaiConfig().as_dict()
    out["seconds"] = time.time() - t0
    return out


__all__ = ["run_task", "icl_items"]
