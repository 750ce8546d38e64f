"""The LAAI experiment (`steerfast laai-eval`): zero-shot, few-shot ICL, CAA and LAAI on the fv_* tasks.

Every condition uses the same 5 demonstrations (the task's first train items) and the same
zero-shot prompt format; scoring is exact match of greedy generation (evaluate/generation.py).
CAA's layer, coefficient and positions are chosen per task on the dev split; LAAI uses the
recipe's DEFAULTS (chosen once on dev with `--sweep`, see docs/laai_results.md).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

CAA_LAYERS = (8, 15)
CAA_COEFFS = (2.0, 6.0)
CAA_POSITIONS = ("prompt_last", "from_prompt_end")
# LAAI settings tried on dev by --sweep (name, overrides of recipes.laai.DEFAULTS)
SWEEP = (
    ("defaults", {}),
    ("no penalty", {"l1": 0.0, "l2": 0.0}),
    ("penalty x10", {"l1": 1e-3, "l2": 1e-2}),
    ("penalty x100", {"l1": 1e-2, "l2": 1e-1}),
    ("layer 12 only", {"layers": [12]}),
    ("layers 4-14", {"layers": list(range(4, 15))}),
    ("lr 0.01", {"lr": 0.01}),
)


def _limit(items, n):
    return items[:n] if n and n > 0 else items


def _acc_json(acc):
    lo, hi = acc.interval
    return {"correct": acc.correct, "total": acc.total, "accuracy": acc.value, "ci95": [lo, hi]}


class Runner:
    """One model, one format; scores prompts with or without a plan patched in."""

    def __init__(self, model, tok, fmt, batch_size):
        self.model, self.tok, self.fmt, self.batch_size = model, tok, fmt, batch_size

    def max_new(self, outputs):
        return 1 + max(
            len(self.tok(self.fmt.target(y), add_special_tokens=False)["input_ids"]) for y in outputs
        )

    def score(self, prompts, expected, plan=None, desc="generate"):
        import steerfast

        from ..evaluate.generation import exact_match

        kw = dict(max_new_tokens=self.max_new(expected), batch_size=self.batch_size, desc=desc)
        if plan is None:
            return exact_match(self.model, self.tok, prompts, expected, **kw)
        with steerfast.patch(self.model, plan):
            return exact_match(self.model, self.tok, prompts, expected, **kw)

    def zero_shot(self, items):
        return [self.fmt.zero_shot(x) for x, _ in items], [y for _, y in items]

    def train_pairs(self, demos):
        return [(self.fmt.zero_shot(x), self.fmt.target(y)) for x, y in demos]


def _caa_select(r: Runner, task, dev_limit):
    """CAA from the demonstrations: (plan, chosen config, dev table)."""
    from ..recipes.caa import caa

    n = len(task.demos)
    pairs = [
        (r.fmt.zero_shot(x) + r.fmt.target(y), r.fmt.zero_shot(x) + r.fmt.target(task.demos[(i + 1) % n][1]))
        for i, (x, y) in enumerate(task.demos)
    ]
    prompts, expected = r.zero_shot(_limit(task.dev, dev_limit))
    table, best = [], None
    for layer in CAA_LAYERS:
        base = caa(r.model, r.tok, pairs, layer, 1.0, progress=False)
        for coeff in CAA_COEFFS:
            for positions in CAA_POSITIONS:
                plan = _with(base, coeff, positions)
                acc, _ = r.score(prompts, expected, plan, desc=f"CAA dev l{layer} c{coeff:g} {positions}")
                row = {"layer": layer, "coeff": coeff, "positions": positions, "dev": _acc_json(acc)}
                table.append(row)
                if best is None or acc.value > best[1].value:  # ties keep the earlier candidate
                    best = (plan, acc, row)
    return best[0], best[2], table


def _with(plan, coeff, positions):
    from ..plan import Intervention, SteeringPlan

    iv = plan.interventions[0]
    return SteeringPlan(
        [Intervention(iv.layer, iv.site, "add", iv.tensor, positions, coeff)],
        "caa",
        dict(plan.model),
        dict(plan.meta, coeff=coeff, positions=positions),
    )


def _evaluate_task(r: Runner, name, args):
    from ..evaluate.fv_tasks import load_task
    from ..recipes.laai import laai

    task = load_task(name, args.demos)
    items = _limit(task.test, args.test_limit)
    prompts, expected = r.zero_shot(items)
    out, times = {"demos": task.demos, "test_items": len(items)}, {}

    t = time.time()
    acc, comp = r.score(prompts, expected, desc=f"{name} zero-shot")
    out["zero_shot"], times["zero_shot"] = dict(_acc_json(acc), sample=comp[:5]), time.time() - t

    t = time.time()
    few = [r.fmt.few_shot(task.demos, x) for x, _ in items]
    acc, comp = r.score(few, expected, desc=f"{name} few-shot")
    out["few_shot"], times["few_shot"] = dict(_acc_json(acc), sample=comp[:5]), time.time() - t

    t = time.time()
    plan, chosen, table = _caa_select(r, task, args.dev_limit)
    acc, comp = r.score(prompts, expected, plan, desc=f"{name} CAA")
    out["caa"] = dict(_acc_json(acc), chosen=chosen, dev_table=table, sample=comp[:5])
    times["caa"] = time.time() - t

    t = time.time()
    plan = laai(r.model, r.tok, r.train_pairs(task.demos), seed=args.seed)
    acc, comp = r.score(prompts, expected, plan, desc=f"{name} LAAI")
    meta = {k: plan.meta[k] for k in ("layers", "hyper", "training", "surviving_layers")}
    meta["surviving_heads"] = {l: s["heads"] for l, s in plan.meta["survivors"].items()}
    out["laai"] = dict(_acc_json(acc), plan=meta, sample=comp[:5])
    times["laai"] = time.time() - t
    out["seconds"] = times
    return out


def _sweep_task(r: Runner, name, args):
    from ..evaluate.fv_tasks import load_task
    from ..recipes.laai import DEFAULTS, laai

    task = load_task(name, args.demos)
    prompts, expected = r.zero_shot(_limit(task.dev, args.dev_limit))
    rows = []
    for label, over in SWEEP:
        t = time.time()
        kw = dict(DEFAULTS, **over)
        plan = laai(r.model, r.tok, r.train_pairs(task.demos), seed=args.seed, **kw)
        acc, comp = r.score(prompts, expected, plan, desc=f"{name} sweep {label}")
        rows.append(
            {
                "setting": label,
                "overrides": over,
                "dev": _acc_json(acc),
                "training": plan.meta["training"],
                "seconds": time.time() - t,
                "sample": comp[:3],
            }
        )
        print(f"{name:<20} {label:<16} dev {acc}  {plan.meta['training']}", flush=True)
    return rows


NOTES = """
## How the choices were made (dev split)

- Scoring: `steerfast/evaluate/generation.py` — greedy, left padded, max_new_tokens = longest
  target in tokens + 1; the completion is stripped, its first line kept, cut to as many words
  as the expected output, compared case-sensitively (trailing `.,;:!?"'` forgiven).
- Prompt format: `"{input} ->"` with target `" {output}"`, few-shot demos joined by newlines.
  Chosen on the 40 dev items per task among `arrow` (`x ->`), `colon` (`x:`) and `qa`
  (`Q: x\\nA:`): zero-shot was 0% for every format and task (qa 2.5% on capitals), few-shot
  summed over the four tasks arrow 87.5, colon 87.5, qa 62.5 points; arrow was the only format
  with non-zero few-shot accuracy on every task (antonym 12.5, capital 10, en→fr 10, upper 55).
- CAA: 5 pairs from the same demonstrations (prompt + correct output vs prompt + the next
  demo's output), read at the last token; layer in {8, 15} x coeff in {2, 6} x positions in
  {prompt_last, from_prompt_end}, best on the first `--dev-limit` dev items (ties keep the first).
  In this run every candidate scored 0 on dev for every task, so the first candidate was kept;
  CAA from 5 pairs steers this model into numbers and code, never into the task.
- LAAI: one setting for all tasks (recipes/laai.py DEFAULTS), picked with `laai-eval --sweep`
  (docs/laai_sweep.md: 7 settings x 4 tasks, all 40 dev items, 14 min). No setting generalised:
  dev accuracy was 0% everywhere except capitals (defaults 7.5, penalty x10 7.5, others 2.5) and
  antonyms (lr 0.01: 5.0, layer 12 only: 2.5). The defaults had the best dev total. Training fits
  the 5 demonstrations (the loss falls from ~7-12 to ~1, the penalty included; CE near 0 with no
  penalty), but the learned Δ mostly makes the model repeat demonstration outputs or their
  pieces (e.g. uppercase answers " CATSUB…"): with 5 demonstrations and a Δ at every layer this
  135M model memorises rather than learns the task.
"""


def _cell(d):
    return f"{100 * d['accuracy']:.1f} [{100 * d['ci95'][0]:.1f}, {100 * d['ci95'][1]:.1f}]"


def _markdown(results, args, seconds):
    from ..evaluate.stats import Accuracy, beats
    from ..recipes.laai import DEFAULTS

    lines = [
        "# LAAI on the fv_* tasks (SmolLM2-135M-Instruct)",
        "",
        f"Written by `steerfast laai-eval` in {seconds / 60:.1f} min. Exact match of greedy generation, "
        f"accuracy % with the Wilson 95% interval; "
        f"{f'first {args.test_limit}' if args.test_limit else 'all'} test items per task; "
        f"format `{args.format}`; {args.demos} demonstrations (the same for every condition); seed {args.seed}.",
        "",
        "| task | n | zero-shot | few-shot ICL | CAA | LAAI | LAAI beats zero-shot |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        a = lambda k, r=r: Accuracy(r[k]["correct"], r[k]["total"])  # noqa: E731
        c = r["caa"]["chosen"]
        lines.append(
            f"| {name} | {r['test_items']} | {_cell(r['zero_shot'])} | {_cell(r['few_shot'])} | "
            f"{_cell(r['caa'])} (l{c['layer']}, c{c['coeff']:g}, {c['positions']}) | {_cell(r['laai'])} | "
            f"{'yes' if beats(a('laai'), a('zero_shot')) else 'no'} |"
        )
    lines += [
        "",
        "LAAI settings (recipes/laai.py DEFAULTS): " + ", ".join(f"{k}={v}" for k, v in DEFAULTS.items()),
        "",
        "| task | LAAI steps | initial → best loss | layers with a surviving head | heads surviving |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        p = r["laai"]["plan"]
        n_heads = sum(len(h) for h in p["surviving_heads"].values())
        tr = p["training"]
        lines.append(
            f"| {name} | {tr['steps']} | {tr['initial_loss']:.3f} → {tr['best_loss']:.3f} | "
            f"{len(p['surviving_layers'])}/{len(p['layers'])} | {n_heads} |"
        )
    lines += [
        "",
        "Seconds per condition (CAA includes its dev selection, LAAI its training):",
        "",
        "| task | zero-shot | few-shot | CAA | LAAI |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        s = r["seconds"]
        lines.append(
            f"| {name} | {s['zero_shot']:.0f} | {s['few_shot']:.0f} | {s['caa']:.0f} | {s['laai']:.0f} |"
        )
    return "\n".join(lines) + "\n" + NOTES


def run(args) -> int:
    import torch

    from ..evaluate.fv_tasks import get_format
    from ..models import load

    out = Path(args.out)
    if args.render:
        doc = json.loads(out.with_suffix(".json").read_text())
        for k in ("format", "demos", "test_limit", "seed"):
            setattr(args, k, doc[k])
        out.write_text(_markdown(doc["tasks"], args, doc["seconds"]))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.time()
    model, tok = load(args.model)
    tok.padding_side = "left"
    r = Runner(model, tok, get_format(args.format), args.batch_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.sweep:
        rows = {name: _sweep_task(r, name, args) for name in args.tasks}
        out.with_suffix(".json").write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
        lines = [
            "| task | setting | dev accuracy | steps | best loss | seconds |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for name, rs in rows.items():
            lines += [
                f"| {name} | {x['setting']} | {_cell(x['dev'])} | {x['training']['steps']} | "
                f"{x['training']['best_loss']:.3f} | {x['seconds']:.0f} |"
                for x in rs
            ]
        out.write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        return 0
    results = {}
    for name in args.tasks:
        results[name] = _evaluate_task(r, name, args)
        print(
            f"{name}: "
            + ", ".join(f"{k} {_cell(results[name][k])}" for k in ("zero_shot", "few_shot", "caa", "laai")),
            flush=True,
        )
        seconds = time.time() - start  # written after every task: a partial run keeps its rows
        doc = {
            "model": args.model,
            "format": args.format,
            "demos": args.demos,
            "test_limit": args.test_limit,
            "dev_limit": args.dev_limit,
            "seed": args.seed,
            "seconds": seconds,
            "tasks": results,
        }
        out.with_suffix(".json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        out.write_text(_markdown(results, args, seconds))
    print(out.read_text())
    return 0


__all__ = ["run"]
