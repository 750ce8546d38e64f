"""Conditional sentiment steering on the default model: steer positive only when the prompt is about food.

    python -m steerfast.experiments.conditional_sentiment [--model NAME] [--new-tokens 40]

1. recipes.condition on steerfast/data/food_prompts.jsonl (train split: the direction; dev
   split: layer, aggregation, threshold; test split: gate accuracy with a Wilson interval);
2. recipes.caa on the shipped sentiment pairs (layer 10, c = +12: the demo's settings),
   gated with the fitted condition (plan.when);
3. on the 48 held-out test prompts (chat template), greedy completions in one batch each:
   unsteered, CAA always on, CAA gated (every row's gate decided inside the batch). VADER
   compound per completion; effect = steered - unsteered per prompt, mean with a 95%
   bootstrap interval, for prompts about food and the rest separately; plus how many
   gated-out completions equal the unsteered ones token for token.
Writes docs/conditional_sentiment.json and .md.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path

import torch

from ..data import load_jsonl, sentiment_pairs
from ..evaluate.stats import Accuracy
from ..models import load
from ..recipes import caa
from ..recipes.condition import condition, prompt_states
from ..steered_generation import Steer, generate

CAA_LAYER, CAA_COEFF = 10, 12.0
DOCS = Path(__file__).resolve().parents[2] / "docs"


def _chat(tok, text: str) -> str:
    return tok.apply_chat_template(
        [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
    )


def _bootstrap(values: list[float], n: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(values, k=len(values))) for _ in range(n))
    return statistics.fmean(values), means[int(0.025 * n)], means[int(0.975 * n) - 1]


def run(model_name: str = "smollm2-135m-instruct", new_tokens: int = 40) -> dict:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    torch.manual_seed(0)
    model, tok = load(model_name)
    rows = load_jsonl("food_prompts")
    sets = {
        (split, label): [_chat(tok, r["prompt"]) for r in rows if r["split"] == split and r["label"] == label]
        for split in ("train", "dev", "test")
        for label in ("food", "other")
    }
    fit = condition(
        model,
        tok,
        sets["train", "food"],
        sets["train", "other"],
        layers=range(CAA_LAYER),  # CAA at layer 10 is mlp.out of layer 9: the gate must be read by then
        dev=(sets["dev", "food"], sets["dev", "other"]),
        test=(sets["test", "food"], sets["test", "other"]),
    )
    cond = fit.condition
    behaviour = caa(model, tok, sentiment_pairs(), CAA_LAYER, coeff=CAA_COEFF, progress=False)
    gated = behaviour.when(cond)

    prompts = sets["test", "food"] + sets["test", "other"]
    labels = ["food"] * len(sets["test", "food"]) + ["other"] * len(sets["test", "other"])
    key = (cond.layer, cond.aggregate)
    scores = prompt_states(model, tok, prompts, [cond.layer])[key] @ cond.vector
    gate_on = [bool(s > cond.threshold) for s in scores]
    kw = dict(max_new_tokens=new_tokens, do_sample=False)
    outs = {
        "unsteered": generate(model, tok, prompts, None, **kw),
        "caa": generate(model, tok, prompts, [Steer(behaviour)] * len(prompts), **kw),
        "gated": generate(model, tok, prompts, [Steer(gated)] * len(prompts), **kw),
    }
    vader = SentimentIntensityAnalyzer()
    sent = {k: [vader.polarity_scores(t)["compound"] for t in v] for k, v in outs.items()}

    def effect(which: str, label: str) -> dict:
        d = [sent[which][i] - sent["unsteered"][i] for i in range(len(prompts)) if labels[i] == label]
        mean, lo, hi = _bootstrap(d)
        return {"mean": mean, "ci95": [lo, hi], "n": len(d)}

    same = lambda a, b, sel: sum(outs[a][i] == outs[b][i] for i in sel)  # noqa: E731
    off = [i for i in range(len(prompts)) if not gate_on[i]]
    on = [i for i in range(len(prompts)) if gate_on[i]]
    correct = sum(g == (lab == "food") for g, lab in zip(gate_on, labels))
    acc = Accuracy(correct, len(prompts))
    result = {
        "model": model_name,
        "condition": fit.report(),
        "gate_accuracy_test": {"value": acc.value, "wilson95": list(acc.interval), "n": len(prompts)},
        "gate_on": {
            "food": sum(gate_on[: labels.count("food")]),
            "other": sum(gate_on[labels.count("food") :]),
        },
        "caa": {"layer": CAA_LAYER, "coeff": CAA_COEFF, "pairs": len(sentiment_pairs())},
        "new_tokens": new_tokens,
        "vader_mean": {
            k: {
                lab: statistics.fmean(v[i] for i in range(len(v)) if labels[i] == lab)
                for lab in ("food", "other")
            }
            for k, v in sent.items()
        },
        "effect_vs_unsteered": {
            f"{which}/{lab}": effect(which, lab) for which in ("caa", "gated") for lab in ("food", "other")
        },
        "gated_out_equal_unsteered": [same("gated", "unsteered", off), len(off)],
        "gated_in_equal_caa": [same("gated", "caa", on), len(on)],
        "examples": [
            {"prompt": rows_text, "label": lab, "gate": g, **{k: outs[k][i] for k in outs}}
            for i, (rows_text, lab, g) in enumerate(zip(prompts, labels, gate_on))
            if i in (0, 1, len(prompts) - 1, len(prompts) - 2)
        ],
    }
    return result


def markdown(r: dict) -> str:
    c, e = r["condition"], r["effect_vs_unsteered"]
    fmt = lambda x: f"{x['mean']:+.3f} [{x['ci95'][0]:+.3f}, {x['ci95'][1]:+.3f}] (n={x['n']})"  # noqa: E731
    acc = r["gate_accuracy_test"]
    lines = [
        "# Conditional sentiment steering: positive only when the prompt is about food",
        "",
        f"Model `{r['model']}`; written by `python -m steerfast.experiments.conditional_sentiment` "
        "(raw numbers in conditional_sentiment.json).",
        "",
        f"Condition (recipes.condition on data/food_prompts.jsonl, chat template): layer {c['layer']}, "
        f"aggregate `{c['aggregate']}`, threshold {c['threshold']:.4g}; dev accuracy "
        f"{100 * c['dev_accuracy']:.1f}% (n={c['sizes']['dev+'] + c['sizes']['dev-']}); held-out test "
        f"accuracy {100 * acc['value']:.1f}% [{100 * acc['wilson95'][0]:.1f}, {100 * acc['wilson95'][1]:.1f}] "
        f"(Wilson 95%, n={acc['n']}). Gate on for {r['gate_on']['food']} of the food prompts and "
        f"{r['gate_on']['other']} of the others.",
        "",
        f"Behaviour: CAA sentiment, layer {r['caa']['layer']}, c = +{r['caa']['coeff']:g}, "
        f"{r['caa']['pairs']} pairs; greedy, {r['new_tokens']} new tokens, all 48 test prompts in one batch "
        "per column (the gated column decides every row's gate inside the batch).",
        "",
        "VADER compound, steered - unsteered per prompt (mean, 95% bootstrap interval):",
        "",
        "| plan | food prompts | other prompts |",
        "| --- | --- | --- |",
        f"| CAA always on | {fmt(e['caa/food'])} | {fmt(e['caa/other'])} |",
        f"| CAA gated by the condition | {fmt(e['gated/food'])} | {fmt(e['gated/other'])} |",
        "",
        f"Gated-out prompts whose completion equals the unsteered one token for token: "
        f"{r['gated_out_equal_unsteered'][0]} / {r['gated_out_equal_unsteered'][1]}; gated-in prompts "
        f"equal to CAA always on: {r['gated_in_equal_caa'][0]} / {r['gated_in_equal_caa'][1]}.",
        "",
        "Mean VADER compound per column: "
        + "; ".join(
            f"{k}: food {v['food']:+.3f}, other {v['other']:+.3f}" for k, v in r["vader_mean"].items()
        ),
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--new-tokens", type=int, default=40)
    ap.add_argument("--out", default=str(DOCS / "conditional_sentiment"))
    args = ap.parse_args(argv)
    r = run(args.model, args.new_tokens)
    Path(args.out + ".json").write_text(json.dumps(r, indent=2) + "\n")
    Path(args.out + ".md").write_text(markdown(r))
    print(markdown(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
