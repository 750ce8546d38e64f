"""`steerfast tune FAMILY [DATA]`: choose a plan family's layer and strength on held-out data by
measured effect against measured damage (docs/tuning.md); writes the chosen plan, the full
table and the plot, or exits 2 saying why no cell qualified."""

from __future__ import annotations

import json
import math

from .common import add_model_arg, load_model, say


def add_parser(sub) -> None:
    from ..tune import FAMILIES, Budget

    b = Budget()
    p = sub.add_parser(
        "tune", help="choose layer and strength by measured effect vs damage", description=__doc__
    )
    p.add_argument("family", help=f"plan family: {', '.join(FAMILIES)}")
    p.add_argument(
        "data", nargs="?", help="(positive, negative) pairs, JSONL or CSV (default: shipped sentiment pairs)"
    )
    p.add_argument(
        "--row",
        type=int,
        default=0,
        help="actadd: which row of DATA is the pair (default 0; no DATA: Love/Hate)",
    )
    p.add_argument("--element", default="head", help="sadi: head, neuron or hidden (default head)")
    p.add_argument("-k", "--k", type=int, default=4, help="sadi: top units of the layer (default 4)")
    p.add_argument(
        "--eval",
        help="held-out items, columns prompt[, positive, negative] (default: shipped sentiment eval)",
    )
    p.add_argument("--layers", help="comma-separated layers (default: 20%%, 30%%, 40%% of the depth)")
    p.add_argument("--strengths", help="comma-separated strengths (default 2,4,6,8)")
    p.add_argument(
        "--scorer",
        default="none",
        help="effect scorer of greedy completions: vader or none (default none: log-odds)",
    )
    p.add_argument(
        "--both-signs", action="store_true", help="a plan for +c and -c: each row is the worse sign"
    )
    p.add_argument("--max-kl", type=float, default=b.kl, help=f"KL budget, nats/token (default {b.kl})")
    p.add_argument(
        "--max-ppl-ratio",
        type=float,
        default=b.ppl_ratio,
        help=f"perplexity ratio budget (default {b.ppl_ratio})",
    )
    p.add_argument(
        "--max-rep", type=float, default=b.rep, help=f"repeated-3-gram increase budget (default {b.rep})"
    )
    p.add_argument(
        "--max-loops",
        type=float,
        default=b.loops,
        help=f"budget of the increase of the fraction of looping completions (default {b.loops:g})",
    )
    p.add_argument("--tokens", type=int, default=24, help="greedy completion length (default 24)")
    p.add_argument("-o", "--out", help="write the chosen plan (.safetensors)")
    p.add_argument("--table", metavar="JSON", help="write every cell's measurements")
    p.add_argument("--plot", metavar="PNG", help="write effect vs damage per layer")
    add_model_arg(p)
    p.set_defaults(func=run)


def _numbers(text, name: str, kind):
    from ..errors import PlanError

    if text is None:
        return None
    try:
        out = [kind(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise PlanError(f"--{name} must be comma-separated {kind.__name__}s, got {text!r}") from None
    if not out or any(isinstance(x, float) and not math.isfinite(x) for x in out):
        raise PlanError(f"--{name} must be comma-separated finite {kind.__name__}s, got {text!r}")
    return out


def _eval_set(path):
    from ..tune.datasets import sentiment_eval
    from .tables import read_rows

    if path is None:
        return sentiment_eval("tune")
    rows = read_rows(path)
    keep = ("prompt", "positive", "negative")
    return [{k: r[k] for k in keep if k in r} for r in rows]


def _family_data(args):
    from ..data import sentiment_pairs
    from ..errors import PlanError
    from . import inputs

    if args.family == "actadd":
        if args.data is None:
            return {"positive": "Love", "negative": "Hate"}
        rows = inputs.pairs(args.data)
        if not 0 <= args.row < len(rows):
            raise PlanError(f"--row {args.row} out of range (0..{len(rows) - 1}) of {args.data}")
        return {"positive": rows[args.row][0], "negative": rows[args.row][1]}
    pairs = (
        sentiment_pairs()
        if args.data is None
        else (inputs.contrastive if args.family == "sadi" else inputs.pairs)(args.data)
    )
    if args.family == "sadi":
        if args.element not in ("head", "neuron", "hidden"):
            raise PlanError(f"--element must be head, neuron or hidden, got {args.element!r}")
        return {"pairs": pairs, "element": args.element, "k": args.k}
    return {"pairs": pairs}


def run(args) -> int:
    from ..errors import PlanError
    from ..tune import Budget, TuneRefused, family, tune

    build = family(args.family)  # bad input fails before the model loads
    layers = _numbers(args.layers, "layers", int)
    strengths = _numbers(args.strengths, "strengths", float)
    budget = Budget(args.max_kl, args.max_ppl_ratio, args.max_rep, args.max_loops)
    if args.scorer not in ("none", "vader"):
        raise PlanError(f"--scorer must be vader or none, got {args.scorer!r}")
    if args.tokens < 4:
        raise PlanError(
            f"--tokens must be at least 4 (the repeated-3-gram rate needs words), got {args.tokens}"
        )
    if args.out and not args.out.endswith(".safetensors"):
        raise PlanError(f"--out must end in .safetensors, got {args.out!r}")
    data = _family_data(args)
    eval_set = _eval_set(args.eval)
    model, tok = load_model(args.model)
    try:
        result = tune(
            model,
            tok,
            build(model, tok, **data),
            eval_set,
            layers=layers,
            strengths=strengths,
            scorer=None if args.scorer == "none" else args.scorer,
            budget=budget,
            both_signs=args.both_signs,
            max_new_tokens=args.tokens,
            plot=args.plot,
            family=args.family,
        )
    except TuneRefused as exc:
        _write_table(args.table, exc.table)
        raise
    _write_table(args.table, result.table)
    print(render(result))
    if args.out:
        result.plan.save(args.out)
        say(f"wrote {args.out}")
    if args.plot:
        say(f"wrote {args.plot}")
    return 0


def _write_table(path, table) -> None:
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(table, fh, indent=1)
        say(f"wrote {path}")


def _cell(e: dict) -> str:
    return f"{e['mean']:+.3f} [{e['lo']:+.3f}, {e['hi']:+.3f}]"


def render(result) -> str:
    rows = [r for r in result.table if r.get("signs") == "both"] or result.table
    lines = [
        f"{'layer':>5} {'strength':>8}  {'effect':<26} {'KL':<26} {'ppl ratio':<26} {'rep 3-gram':<26} "
        f"{'looping':<26}"
    ]
    for r in rows:
        mark = "  <- chosen" if (r["layer"], r["strength"]) == (result.layer, result.strength) else ""
        lines.append(
            f"{r['layer']:>5} {r['strength']:>8g}  {_cell(r['effect']):<26} {_cell(r['kl']):<26} "
            f"{_cell(r['ppl_ratio']):<26} {_cell(r['rep']):<26} {_cell(r['loops']):<26}{mark}"
        )
    s = result.seconds
    lines.append(
        f"chosen layer {result.layer} strength {result.strength:g} (budget kl <= {result.budget.kl:g}, "
        f"ppl ratio <= {result.budget.ppl_ratio:g}, rep <= {result.budget.rep:g}, looping <= "
        f"{result.budget.loops:g}); grid took {s['total']:.1f} s"
    )
    return "\n".join(lines)
