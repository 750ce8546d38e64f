"""`steerfast sadi-eval` (the SADI experiment, steerfast/experiments/sadi.py) and `steerfast sadi-heatmap`."""

from __future__ import annotations

import argparse
import json
import os
import time


def add_parser(sub) -> None:
    ev = sub.add_parser("sadi-eval", help="SADI vs CAA, random mask, fixed vector, no steering on MC tasks")
    ev.add_argument("--model", default="smollm2-135m-instruct")
    ev.add_argument("--out", default="docs/sadi_results.md", help="markdown table; JSON beside it")
    ev.add_argument("--tasks", nargs="+", default=None)
    ev.add_argument("--calib-pairs", type=int, default=None)
    ev.add_argument("--dev-items", type=int, default=None, help="prefix of the dev split (0 = all)")
    ev.add_argument("--test-items", type=int, default=None, help="prefix of the test split (0 = all)")
    ev.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite the markdown from the JSON beside --out; run nothing",
    )
    hm = sub.add_parser("sadi-heatmap", help="PNG heatmap of SADI's per-(layer, head) scores")
    hm.add_argument("--model", default="smollm2-135m-instruct")
    hm.add_argument("--task", default="mc_copa")
    hm.add_argument("--out", default="docs/sadi_heatmap.png")
    hm.add_argument("--calib-pairs", type=int, default=96)
    hm.add_argument("--top", type=int, default=10)
    st = sub.add_parser(
        "sadi-study", help="SADI variants vs no steering and random masks, paired tests (issue 16)"
    )
    st.add_argument("--model", default="smollm2-135m-instruct")
    st.add_argument(
        "--out", default=None, help="markdown; JSON beside it (default docs/sadi_results_<model>.md)"
    )
    st.add_argument("--tasks", nargs="+", default=None)
    st.add_argument(
        "--render-only", action="store_true", help="rewrite the markdown from the JSON; run nothing"
    )
    st.add_argument("--quick", action="store_true", help="the cut grid (sadi_study.quick_config)")
    st.add_argument(
        "--merge",
        nargs="+",
        default=(),
        help="add the tasks of these result JSONs (other runs) to --out's JSON",
    )
    st.set_defaults(func=_study)
    ev.set_defaults(func=run)
    hm.set_defaults(func=run)


def _eval(args) -> int:
    from ..experiments import sadi as sweep
    from ..models import load

    cfg = sweep.SweepConfig()
    if args.calib_pairs is not None:
        cfg.calib_pairs = args.calib_pairs
    if args.dev_items is not None:
        cfg.dev_items = args.dev_items
    if args.test_items is not None:
        cfg.test_items = args.test_items
    t0 = time.perf_counter()
    json_path = args.out.rsplit(".", 1)[0] + ".json"
    if args.render_only:
        with open(json_path, encoding="utf-8") as f:
            results = json.load(f)
        cfg = sweep.SweepConfig(**results["config"])
    header = (
        f"# SADI on the shipped MC tasks ({args.model})\n\n"
        f"Accuracy (%) with Wilson 95% interval on {_prefix(cfg.test_items)} test "
        f"items; K, δ, layer and coefficients chosen on {_prefix(cfg.dev_items)} dev "
        f"items. Command: `steerfast sadi-eval --calib-pairs {cfg.calib_pairs} "
        f"--dev-items {cfg.dev_items} --test-items {cfg.test_items}`. Calibration: "
        f"{cfg.calib_pairs} calib pairs per task. SADI steers the prompt's last token "
        f"(`prompt_last`) with A' = (1 + δ)·A on the masked units (the official code's "
        f"multiplier s = 1 + δ); CAA adds c·v from the prompt's end on. Options are scored "
        f"by summed log-likelihood. Produced by `steerfast sadi-eval`.\n\n"
    )

    if args.render_only:
        sweep.save(results, args.out, header)
        print(sweep.markdown(results))
        return 0
    model, tok = load(args.model)

    def write(results):
        results["seconds"] = round(time.perf_counter() - t0, 1)
        sweep.save(results, args.out, header)

    results = sweep.run(model, tok, args.tasks or sweep.TASKS, cfg, on_task=write)
    write(results)
    print(sweep.markdown(results))
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f}s")
    return 0


def _heatmap(args) -> int:
    from ..data import load_jsonl
    from ..evaluate.multiple_choice import contrastive_pairs
    from ..experiments.heatmap import heatmap
    from ..models import load
    from ..recipes.sadi import mean_differences

    model, tok = load(args.model)
    calib = load_jsonl(args.task, "calib")[: args.calib_pairs]
    scores = mean_differences(model, tok, contrastive_pairs(calib))
    top = heatmap(
        scores.scores["head"],
        args.out,
        f"{args.model} · {args.task}: mean head difference, {len(calib)} pairs",
        args.top,
    )
    print(f"top-{len(top)} heads (layer, head, score):")
    for l, h, s in top:
        print(f"  L{l:<3} H{h:<3} {s:+.5f}")
    print(f"wrote {args.out}")
    return 0


def _study(args) -> int:
    import torch

    from ..experiments import sadi_report, sadi_study

    out = args.out or f"docs/sadi_results_{args.model}.md"
    json_path = out.rsplit(".", 1)[0] + ".json"
    if not args.render_only:
        from ..models import load

        torch.set_num_threads(int(os.environ.get("STEERFAST_THREADS", "1")))
        model, tok = load(args.model)
        tasks = tuple(args.tasks) if args.tasks else sadi_study.StudyConfig().tasks
        cfg = sadi_study.quick_config(tasks) if args.quick else sadi_study.StudyConfig(tasks=tasks)
        t0 = time.perf_counter()

        def write(results):
            results["seconds"] = round(time.perf_counter() - t0, 1)
            with open(json_path, "w", encoding="utf-8") as f:
                json.dump(results, f, indent=1)

        write(sadi_study.run(model, tok, args.model, cfg, on_task=write))
    with open(json_path, encoding="utf-8") as f:
        results = json.load(f)
    if args.merge:
        for path in args.merge:
            with open(path, encoding="utf-8") as f:
                other = json.load(f)
            if other["model"] != results["model"]:
                raise SystemExit(f"{path} is for {other['model']}, not {results['model']}")
            for name, task in other["tasks"].items():
                results["tasks"][name] = {**task, "config": other["config"]}
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    with open(out, "w", encoding="utf-8") as f:
        f.write(sadi_report.markdown(results))
    print(f"wrote {out}")
    return 0


def _prefix(n: int) -> str:
    return f"the first {n}" if n else "all the"


def run(args: argparse.Namespace) -> int:
    return _eval(args) if args.command == "sadi-eval" else _heatmap(args)


__all__ = ["add_parser", "run"]
