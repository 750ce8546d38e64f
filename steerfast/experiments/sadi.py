"""SADI vs baselines on the shipped MC tasks: settings chosen on dev, reported on test.

Per task, one calibration pass over the calib pairs gives every SADI score and every layer's
CAA vector. Then, on (a prefix of) the dev split: SADI-Head/-Neuron/-Hidden over a K × δ
grid, CAA over layers × coefficients, the fixed-vector ablation over coefficients (on
SADI-Head's chosen mask); the random-mask ablation reuses SADI-Head's K and δ. Ties on dev go
to the earlier grid point (smaller K, then smaller δ). Each choice is then measured once on
the full test split, next to no steering.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ..adapters import residual_input_site
from ..data import load_jsonl
from ..evaluate.multiple_choice import contrastive_pairs, encode, evaluate
from ..evaluate.stats import Accuracy, beats
from ..plan import Intervention, SteeringPlan, model_hint
from ..recipes.sadi import ELEMENTS, SadiScores, mask_plan, mean_differences, top_k
from ..recipes.sadi_baselines import fixed_vector_plan, random_mask

TASKS = ("mc_copa", "mc_facts", "mc_sentiment")
METHODS = ("none", "caa", "random-mask", "fixed-vector", "sadi-head", "sadi-neuron", "sadi-hidden")


@dataclass
class SweepConfig:
    # the committed docs/sadi_results.md run (12.5 min on a 2-core CPU); the K/δ grid is small
    calib_pairs: int = 150
    dev_items: int = 0  # a prefix of the dev split (0 = all)
    test_items: int = 0  # a prefix of the test split (0 = all)
    k: dict = field(default_factory=lambda: {"head": [1, 4, 10], "neuron": [10, 100], "hidden": [1, 5]})
    delta: dict = field(default_factory=lambda: {"head": [4.0, 19.0], "neuron": [4.0], "hidden": [4.0]})
    caa_layers: tuple = (1 / 3, 1 / 2)  # fractions of the depth
    caa_coeffs: tuple = (2.0,)
    fixed_coeffs: tuple = (10.0, 40.0)
    positions: str = "prompt_last"
    seed: int = 0
    batch_size: int = 32


def caa_plan(model, scores: SadiScores, layer: int, coeff: float) -> SteeringPlan:
    """CAA (same plan as recipes.caa) from the calibration pass's residual differences."""
    site_layer, site = residual_input_site(layer)
    iv = Intervention(site_layer, site, "add", scores.residual[layer], "from_prompt_end", coeff)
    return SteeringPlan([iv], "caa", model_hint(model), {"layer": layer, "pairs": scores.pairs})


def _acc(a: Accuracy) -> dict:
    lo, hi = a.interval
    return {"correct": a.correct, "total": a.total, "value": a.value, "low": lo, "high": hi}


def _sadi_candidates(model, scores, element: str, cfg: SweepConfig) -> list[tuple[dict, SteeringPlan]]:
    """SADI-`element` at every (K, δ) of the sweep."""
    cands = []
    for k in cfg.k[element]:
        units = top_k(scores.scores[element], k)
        for d in cfg.delta[element]:
            params = {"k": k, "delta": d, "units": [list(u) for u in units]}
            plan = mask_plan(model, element, units, d, cfg.positions, scores.head_dim, f"sadi-{element}")
            cands.append((params, plan))
    return cands


def _caa_candidates(model, scores, cfg: SweepConfig) -> list[tuple[dict, SteeringPlan]]:
    """CAA from the same forward passes, at the sweep's layer fractions and coefficients."""
    L = len(scores.residual)
    layers = sorted({max(1, min(L - 1, round(f * L))) for f in cfg.caa_layers})
    return [({"layer": l, "coeff": c}, caa_plan(model, scores, l, c)) for l in layers for c in cfg.caa_coeffs]


def _fixed_candidates(model, scores, head: dict, cfg: SweepConfig) -> list[tuple[dict, SteeringPlan]]:
    """The fixed-vector baseline on SADI-Head's chosen heads, at each coefficient of the sweep."""
    units = [tuple(u) for u in head["units"]]
    return [
        (
            {"k": head["k"], "coeff": c, "units": head["units"]},
            fixed_vector_plan(model, scores, "head", units, c, cfg.positions),
        )
        for c in cfg.fixed_coeffs
    ]


def run_task(
    model, tokenizer, task: str, cfg: SweepConfig, progress: bool = True, log: Callable[[str], None] = print
) -> dict:
    t0 = time.perf_counter()
    calib = load_jsonl(task, "calib")[: cfg.calib_pairs]
    dev = load_jsonl(task, "dev")
    dev = dev[: cfg.dev_items] if cfg.dev_items else dev
    test = load_jsonl(task, "test")
    test = test[: cfg.test_items] if cfg.test_items else test
    enc_dev, enc_test = encode(tokenizer, dev), encode(tokenizer, test)
    scores = mean_differences(model, tokenizer, contrastive_pairs(calib), progress=progress)
    log(f"[{task}] calibrated on {len(calib)} pairs in {time.perf_counter() - t0:.0f}s")

    def on(items, enc, plan) -> Accuracy:
        return evaluate(model, tokenizer, items, plan, batch_size=cfg.batch_size, encoded=enc).accuracy

    def pick(name: str, candidates: list[tuple[dict, SteeringPlan]]) -> tuple[dict, SteeringPlan, Accuracy]:
        best = None
        for params, plan in candidates:
            acc = on(dev, enc_dev, plan)
            log(f"[{task}] dev {name} {params}: {acc}")
            if best is None or acc.correct > best[2].correct:
                best = (params, plan, acc)
        return best

    out: dict = {"methods": {}, "calib_pairs": len(calib), "dev_items": len(dev), "test_items": len(test)}

    def report(name: str, params: dict, plan: SteeringPlan | None, dev_acc: Accuracy | None):
        acc = on(test, enc_test, plan)
        log(f"[{task}] TEST {name} {params}: {acc}")
        out["methods"][name] = {
            "params": params,
            "test": _acc(acc),
            "dev": _acc(dev_acc) if dev_acc else None,
        }

    report("none", {}, None, on(dev, enc_dev, None))
    chosen = {}
    for element in ELEMENTS:
        cands = _sadi_candidates(model, scores, element, cfg)
        params, plan, dev_acc = pick(f"sadi-{element}", cands)
        chosen[element] = params
        report(f"sadi-{element}", params, plan, dev_acc)

    params, plan, dev_acc = pick("caa", _caa_candidates(model, scores, cfg))
    report("caa", params, plan, dev_acc)

    head = chosen["head"]
    params, plan, dev_acc = pick("fixed-vector", _fixed_candidates(model, scores, head, cfg))
    report("fixed-vector", params, plan, dev_acc)

    plan = random_mask(model, scores, "head", head["k"], head["delta"], cfg.positions, cfg.seed)
    report(
        "random-mask",
        {"k": head["k"], "delta": head["delta"], "seed": cfg.seed, "units": plan.meta["units"]},
        plan,
        on(dev, enc_dev, plan),
    )
    out["seconds"] = round(time.perf_counter() - t0, 1)
    top = top_k(scores.scores["head"], 10)
    out["top_heads"] = [[l, h, float(scores.scores["head"][l, h])] for l, h in top]
    return out


def run(
    model,
    tokenizer,
    tasks=TASKS,
    cfg: SweepConfig | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    on_task: Callable[[dict], None] | None = None,
) -> dict:
    """Every task in turn; `on_task(results_so_far)` after each (write partial results)."""
    cfg = cfg or SweepConfig()
    results = {"model": model_hint(model), "config": asdict(cfg), "tasks": {}}
    for task in tasks:
        results["tasks"][task] = run_task(model, tokenizer, task, cfg, progress, log)
        if on_task:
            on_task(results)
    return results


def markdown(results: dict) -> str:
    tasks = list(results["tasks"])
    lines = ["| method | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
    for m in METHODS:
        cells = []
        for t in tasks:
            r = results["tasks"][t]["methods"].get(m)
            if r is None:
                cells.append("–")
                continue
            a = Accuracy(r["test"]["correct"], r["test"]["total"])
            p = {k: v for k, v in r["params"].items() if k not in ("units",)}
            cells.append(f"{a}" + (f" ({', '.join(f'{k}={v:g}' for k, v in p.items())})" if p else ""))
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines.append("")
    for t in tasks:
        ms = results["tasks"][t]["methods"]
        acc = {m: Accuracy(r["test"]["correct"], r["test"]["total"]) for m, r in ms.items()}
        win = [m for m in acc if m != "none" and beats(acc[m], acc["none"])]
        lose = [m for m in acc if m != "none" and beats(acc["none"], acc[m])]
        lines.append(
            f"- {t} ({results['tasks'][t]['seconds']:.0f} s): beyond no steering's 95% "
            f"interval: {', '.join(win) or 'none'}; below it: {', '.join(lose) or 'none'}."
        )
    return "\n".join(lines)


def save(results: dict, md_path: str, header: str = "") -> str:
    json_path = md_path.rsplit(".", 1)[0] + ".json"
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(header + markdown(results) + "\n")
    return json_path


__all__ = ["SweepConfig", "TASKS", "METHODS", "caa_plan", "run_task", "run", "markdown", "save"]
