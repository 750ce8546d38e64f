"""Every cell's effect and damage with 95% bootstrap intervals over prompts / text windows.

What is reused across cells: the unsteered prefill of every eval prompt but its last token
(log-odds effect, plans steering from the prompt's end), the unsteered greedy completions
(scorer and degeneration are paired against them) and the unsteered pass over each batch of
neutral-text windows (KL and perplexity). Each cell still costs its own steered greedy
generation, its own steered pass over the neutral text and one token per prompt (plus the
continuations' tokens) for the log-odds.
"""

from __future__ import annotations

import math
import sys
import time

from .completions import greedy
from .damage import NeutralText, loops, repeated_ngram_rate
from .effect import LogOddsEffect, scorer_shift
from .interval import bootstrap_mean


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def measure_cells(
    model,
    tokenizer,
    plans: dict,
    prompts: list[str],
    pairs: list[dict] | None,
    scorer,
    neutral: NeutralText,
    max_new_tokens: int = 24,
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = True,
) -> tuple[list[dict], dict]:
    """(rows, seconds): plans maps a cell (layer, strength) to its plan."""
    t0 = time.perf_counter()
    per = {c: {} for c in plans}
    if pairs is not None:
        lo = LogOddsEffect(model, tokenizer, pairs)
        for c, p in plans.items():
            per[c]["log_odds"] = lo.per_item(p)
    t_lo = time.perf_counter()
    base_text = greedy(model, tokenizer, prompts, None, max_new_tokens)
    base_rep = [repeated_ngram_rate(t) for t in base_text]
    base_loops = [loops(t) for t in base_text]
    for i, (c, p) in enumerate(plans.items()):
        text = greedy(model, tokenizer, prompts, p, max_new_tokens)
        per[c]["rep"] = [repeated_ngram_rate(t) - b for t, b in zip(text, base_rep)]
        per[c]["loops"] = [float(loops(t)) - b for t, b in zip(text, base_loops)]
        if scorer is not None:
            per[c]["score"] = scorer_shift(scorer, text, base_text)
        per[c]["samples"] = text[:3]
        _say(progress, f"tune: completions {i + 1}/{len(plans)}")
    t_gen = time.perf_counter()
    dmg = neutral.measure(model, plans, progress=(lambda a, b: _say(progress, f"tune: neutral text {a}/{b}")))
    t_dmg = time.perf_counter()
    metric = "score" if scorer is not None else "log_odds"
    rows = []
    for c in plans:
        m = per[c]
        row = {"layer": c[0], "strength": c[1], "effect": bootstrap_mean(m[metric], n_boot, seed)}
        if "log_odds" in m and metric != "log_odds":
            row["log_odds"] = bootstrap_mean(m["log_odds"], n_boot, seed)
        row["kl"] = bootstrap_mean(dmg[c]["kl"], n_boot, seed)
        row["ppl_ratio"] = {k: math.exp(v) for k, v in bootstrap_mean(dmg[c]["nll"], n_boot, seed).items()}
        row["rep"] = bootstrap_mean(m["rep"], n_boot, seed)
        row["loops"] = bootstrap_mean(m["loops"], n_boot, seed)
        row["samples"] = m["samples"]
        rows.append(row)
    seconds = {"log_odds": t_lo - t0, "completions": t_gen - t_lo, "neutral_text": t_dmg - t_gen}
    return rows, seconds
