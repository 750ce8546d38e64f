"""The default held-out data of a sentiment tune: the shipped neutral prompts (never used to
build the sentiment vectors), the first 50 for tuning and the other 70 for testing, each with
a positive and a negative continuation for the log-odds effect."""

from __future__ import annotations

from ..data import neutral_prompts

CONTINUATIONS = (" It was wonderful.", " It was terrible.")
TUNE_PROMPTS = 50


def sentiment_eval(split: str = "tune") -> list[dict]:
    prompts = neutral_prompts()
    chosen = {"tune": prompts[:TUNE_PROMPTS], "test": prompts[TUNE_PROMPTS:]}[split]
    pos, neg = CONTINUATIONS
    return [{"prompt": p, "positive": pos, "negative": neg} for p in chosen]
