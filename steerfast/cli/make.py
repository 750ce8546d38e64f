"""`steerfast make {actadd,caa,sadi,laai,ablation,condition,monitor} DATA -o PLAN`: a plan from a JSONL/CSV
file with the recipes in steerfast/recipes. PLAN ending in .gguf is written as a control vector
(an ablation or a conditional plan cannot be one: refused)."""

from __future__ import annotations

import argparse

from . import inputs
from .common import add_model_arg, load_model, say


def add_parser(sub) -> None:
    p = sub.add_parser(
        "make",
        help="make a plan (actadd, caa, sadi, laai, ablation, condition) or a monitor from a JSONL or CSV file",
        description=__doc__,
    )
    recipes = p.add_subparsers(dest="recipe", required=True, metavar="RECIPE")

    a = _recipe(recipes, "actadd", "one (positive, negative) pair, added to the first prompt tokens")
    a.add_argument("--row", type=int, default=0, help="which row of DATA is the pair (default 0)")
    a.add_argument("--layer", type=int, default=6, help="residual stream entering this layer (default 6)")
    a.add_argument("--coeff", type=float, default=5.0)

    c = _recipe(recipes, "caa", "mean difference of (positive, negative) pairs")
    c.add_argument("--layer", type=int, default=8, help="residual stream entering this layer (default 8)")
    c.add_argument("--coeff", type=float, default=4.0)
    c.add_argument("--positions", default="from_prompt_end")

    s = _recipe(recipes, "sadi", "a SADI mask from contrastive pairs or multiple-choice items")
    s.add_argument("--element", choices=("head", "neuron", "hidden"), default="head")
    s.add_argument("-k", "--k", type=int, default=4, help="units in the global top-K mask")
    s.add_argument(
        "--delta",
        type=float,
        default=None,
        help="A' = (1 + δ)·A on masked units (default: the recipe's, 0.25)",
    )
    s.add_argument("--positions", default="prompt_last")

    b = _recipe(recipes, "ablation", "remove the mean-difference direction of (positive, negative) pairs")
    b.add_argument(
        "--layer", type=int, default=15, help="direction read at the input of this layer (default 15)"
    )
    b.add_argument("--alpha", type=float, default=1.0, help="1 removes the direction, <1 shrinks, 2 flips")
    b.add_argument(
        "--layers", type=_layers, default="all", help="ablate at 'all' layers or comma-separated indices"
    )
    b.add_argument("--positions", default="all")

    l = _recipe(recipes, "laai", "learned attention-output biases from (prompt, target) demonstrations")
    l.add_argument("--layers", type=_layers, default="all", help="'all' or comma-separated layer indices")
    l.add_argument("--steps", type=int, default=None, help="training steps (default: LaaiConfig's, 60)")
    l.add_argument("--lr", type=float, default=None, help="learning rate (default: LaaiConfig's, 0.05)")
    l.add_argument("--seed", type=int, default=0)

    g = _recipe(
        recipes, "condition", "gate a plan by a condition fitted on labelled prompts (columns prompt, label)"
    )
    g.add_argument("--plan", required=True, help="the plan to gate (.safetensors)")
    g.add_argument("--steer-label", default="steer", help="label of the prompts to steer (default 'steer')")
    g.add_argument(
        "--gated", type=_layers, default="all", help="'all' or comma-separated intervention indices"
    )
    g.add_argument(
        "--layers", type=_layers, default="all", help="candidate layers (default: every layer allowed)"
    )
    g.add_argument("--aggregate", choices=("mean", "last", "both"), default="both")
    g.add_argument("--seed", type=int, default=0)

    m = _recipe(recipes, "monitor", "a per-token concept monitor from (positive, negative) pairs")
    m.add_argument("--name", default="concept", help="the monitor's name (default 'concept')")
    m.add_argument(
        "--layers", type=_layers, default="all", help="candidate layers (default all; best dev accuracy wins)"
    )
    m.add_argument("--seed", type=int, default=0, help="seed of the train/dev/test split")


def _recipe(recipes, name, help_):
    p = recipes.add_parser(name, help=help_)
    p.add_argument("data", help="JSONL or CSV file (columns: docs/cli.md)")
    p.add_argument("-o", "--out", required=True, help="output plan: .safetensors or .gguf")
    p.add_argument("--limit", type=int, default=0, help="use the first N rows (0 = all)")
    p.add_argument(
        "--allow-positions",
        action="store_true",
        help=".gguf output: accept that llama.cpp steers every token",
    )
    add_model_arg(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..interop import save_plan
    from ..plan import describe

    if args.recipe == "condition" and str(args.out).lower().endswith(".gguf"):
        from ..errors import PlanError

        raise PlanError(
            f"--out {args.out}: a conditional plan cannot be a llama.cpp control vector (llama.cpp "
            "steers every request unconditionally); write a .safetensors plan"
        )
    if args.recipe == "monitor":
        from .make_monitor import run_monitor

        return run_monitor(args, _read(args))
    data = _read(args)  # bad files fail before the model loads
    model, tok = load_model(args.model)
    say(f"running {args.recipe} on {len(data)} row(s) ...")
    plan = _RECIPES[args.recipe](model, tok, data, args)
    out = save_plan(plan, args.out, allow_positions=args.allow_positions)
    print(describe(plan))
    print(f"wrote {out}")
    return 0


def _read(args):
    limit = args.limit or None
    if args.recipe == "actadd":
        rows = inputs.pairs(args.data)
        if not 0 <= args.row < len(rows):
            from .tables import DataFileError

            raise DataFileError(f"{args.data}: --row {args.row} out of range (0..{len(rows) - 1})")
        return [rows[args.row]]
    if args.recipe in ("caa", "ablation", "monitor"):
        return inputs.pairs(args.data, limit)
    if args.recipe == "sadi":
        return inputs.contrastive(args.data, limit)
    if args.recipe == "condition":
        return inputs.labelled(args.data, limit)
    return inputs.demos(args.data, limit)


def _actadd(model, tok, data, args):
    from ..recipes import actadd

    ((pos, neg),) = data
    return actadd(model, tok, pos, neg, layer=args.layer, coeff=args.coeff)


def _caa(model, tok, data, args):
    from ..recipes import caa

    return caa(model, tok, data, layer=args.layer, coeff=args.coeff, positions=args.positions)


def _sadi(model, tok, data, args):
    from ..recipes import sadi

    return sadi(
        model, tok, data, element=args.element, k=args.k, delta=args.delta, positions=args.positions
    ).plan


def _laai(model, tok, data, args):
    from ..recipes.laai import LaaiConfig, laai

    given = {"steps": args.steps, "lr": args.lr}
    config = LaaiConfig(layers=args.layers).replace(**{k: v for k, v in given.items() if v is not None})
    return laai(model, tok, data, config, seed=args.seed)


def _ablation(model, tok, data, args):
    from ..recipes import ablation

    layers = None if args.layers == "all" else args.layers
    return ablation(
        model, tok, data, layer=args.layer, alpha=args.alpha, layers=layers, positions=args.positions
    ).plan


def _condition(model, tok, data, args):
    from ..plan import SteeringPlan
    from ..recipes import condition
    from .common import say as _say
    from .tables import DataFileError

    plan = SteeringPlan.load(args.plan)
    gated = None if args.gated == "all" else args.gated
    ivs = (
        plan.interventions
        if gated is None
        else [plan.interventions[i] for i in gated if i < len(plan.interventions)]
    )
    first = min(iv.layer for iv in ivs)  # the gate is read at or before the earliest gated intervention
    layers = list(range(first + 1)) if args.layers == "all" else args.layers
    split = {}
    for r in data:
        split.setdefault(r.get("split") or "train", ([], []))[
            0 if r["label"] == args.steer_label else 1
        ].append(r["prompt"])
    train = split.get("train", ([], []))
    if not train[0] or not train[1]:
        raise DataFileError(
            f"{args.data}: needs prompts labelled {args.steer_label!r} and others in the train split "
            f"(labels seen: {sorted({r['label'] for r in data})})"
        )
    fit = condition(
        model,
        tok,
        train[0],
        train[1],
        layers=layers,
        aggregates=("mean", "last") if args.aggregate == "both" else (args.aggregate,),
        dev=split.get("dev") if all(split.get("dev", ([], []))) else None,
        test=split.get("test") if all(split.get("test", ([], []))) else None,
        seed=args.seed,
    )
    rep = fit.report()
    test = "n/a" if rep["test_accuracy"] is None else f"{100 * rep['test_accuracy']:.1f}%"
    _say(
        f"condition: layer {rep['layer']} {rep['aggregate']} > {rep['threshold']:.4g}; "
        f"dev accuracy {100 * rep['dev_accuracy']:.1f}%, test accuracy {test}"
    )
    return plan.when(fit.condition, gated)


def _layers(text: str):
    if text == "all":
        return text
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'all' or comma-separated integers, got {text!r}") from None


_RECIPES = {
    "actadd": _actadd,
    "caa": _caa,
    "sadi": _sadi,
    "laai": _laai,
    "ablation": _ablation,
    "condition": _condition,
}
