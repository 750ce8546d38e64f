"""The >=1B positive control for SADI (issue 16 item 5): the eval helper's SADI study
(experiments/sadi_study.run_task) on Qwen2.5-Coder-1.5B-Instruct with a budget that fits a shared
2-core CPU: one task, the first `dev`/`test` items of its splits, a small grid, few random masks.

    python -m steerfast.experiments.positive_control --task copa --dev 40 --test 80 \\
        --out docs/laai_positive_control_sadi.json

The LAAI half of the control is `steerfast laai-eval --model qwen2.5-coder-1.5b ...`
(docs/laai_positive_control.md has both, with the exact commands and wall times).
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import contextmanager

MODEL = "qwen2.5-coder-1.5b"


@contextmanager
def truncated_splits(module, dev: int, test: int, calib: int):
    """sadi_study builds whole splits; the control scores only their first items."""
    from ..evaluate.tasks import Task

    real = module.build

    def build(name, tok=None, **knobs):
        t = real(name, tok, **knobs)
        cut = {"calib": calib, "dev": dev, "test": test}
        return Task(t.name, t.scoring, {k: v[: cut.get(k, len(v))] for k, v in t.splits.items()}, t.knobs)

    module.build = build
    try:
        yield
    finally:
        module.build = real


def main(argv=None) -> int:
    import torch

    from ..models import load
    from . import sadi_study

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="copa")
    p.add_argument("--dev", type=int, default=40)
    p.add_argument("--test", type=int, default=80)
    p.add_argument("--calib", type=int, default=32)
    p.add_argument("--masks", type=int, default=3)
    p.add_argument("--head-k", type=int, nargs="+", default=[3, 10])
    p.add_argument("--head-s", type=float, nargs="+", default=[1.25, 1.5])
    p.add_argument(
        "--neuron-k", type=int, nargs="*", default=[], help="SADI-Neuron K grid (none: heads only)"
    )
    p.add_argument("--neuron-s", type=float, nargs="*", default=[2.0])
    p.add_argument("--out", default="docs/laai_positive_control_sadi.json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    model, tok = load(MODEL)
    grid = {"official/head": (args.head_k, args.head_s)}
    if args.neuron_k:
        grid["official/neuron"] = (args.neuron_k, args.neuron_s)
    cfg = sadi_study.StudyConfig(
        tasks=(args.task,),
        calib_pairs=args.calib,
        grid=grid,
        sanity=None,
        random_masks=args.masks,
        random_for=tuple(grid),
    )
    with truncated_splits(sadi_study, args.dev, args.test, args.calib):
        res = sadi_study.run_task(model, tok, MODEL, args.task, cfg, log=lambda m: print(m, flush=True))
    doc = {"model": MODEL, "args": vars(args), "config": {"grid": cfg.grid, "random_masks": cfg.random_masks},
           "task": args.task, "result": res, "wall_seconds": time.time() - t0}  # fmt: skip
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
    print(json.dumps({k: v for k, v in res.items() if k != "variants"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
