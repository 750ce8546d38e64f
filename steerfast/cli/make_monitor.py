"""`steerfast make monitor PAIRS -o MONITOR.safetensors`: a per-token concept monitor
(steerfast/recipes/monitor.py), with its held-out accuracy printed."""

from __future__ import annotations

from .common import load_model, say


def run_monitor(args, pairs) -> int:
    from ..errors import PlanError
    from ..recipes import monitor

    if not str(args.out).lower().endswith(".safetensors"):
        raise PlanError(f"--out {args.out}: a monitor is written as .safetensors")
    model, tok = load_model(args.model)
    say(f"fitting monitor {args.name!r} on {len(pairs)} pair(s) ...")
    layers = None if args.layers == "all" else args.layers
    fit = monitor(model, tok, pairs, name=args.name, layers=layers, seed=args.seed)
    fit.monitor.save(args.out)
    rep = fit.report()
    test = "n/a" if rep["test_accuracy"] is None else f"{100 * rep['test_accuracy']:.1f}%"
    print(fit.monitor.describe())
    print(f"dev accuracy {100 * rep['dev_accuracy']:.1f}%, held-out test accuracy {test} ({rep['pairs']})")
    print(f"wrote {args.out}")
    return 0
