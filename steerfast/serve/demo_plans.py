"""Small steering plans for the default model, built with the recipes on a little data.

Used by the serving tests and benchmark (and handy for trying the server): CAA, ActAdd,
SADI-Head and LAAI, each in seconds on a CPU. Not tuned for quality.
"""

from __future__ import annotations

from ..data import load_jsonl, sentiment_pairs
from ..evaluate.multiple_choice import contrastive_pairs
from ..plan import SteeringPlan


def build(model, tokenizer) -> dict[str, SteeringPlan]:
    from ..recipes import actadd, caa, laai, sadi

    n_layers = model.config.num_hidden_layers
    mid = n_layers // 4
    plans = {
        "caa": caa(model, tokenizer, sentiment_pairs()[:12], layer=mid, coeff=4.0, progress=False),
        "actadd": actadd(model, tokenizer, "Love", "Hate", layer=min(6, n_layers - 1), coeff=5.0),
        "sadi": sadi(
            model,
            tokenizer,
            contrastive_pairs(load_jsonl("mc_sentiment", split="calib"))[:16],
            element="head",
            k=4,
            delta=8.0,
            progress=False,
        ).plan,
        "laai": laai(
            # λ2 = 1e-3: a demo plan with a visible effect (the no-dev default 0.1 keeps few heads)
            model,
            tokenizer,
            [("France ->", " Paris"), ("Japan ->", " Tokyo")],
            steps=6,
            l2=1e-3,
            progress=False,
        ),
    }
    return plans
