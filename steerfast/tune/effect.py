"""Effect: how far a plan moves the behaviour it is for, per held-out prompt, vs unsteered.

- log-odds (items with `positive` and `negative` continuations): per prompt, the shift of
  log p(positive | prompt) - log p(negative | prompt) from the unsteered model. Plans that steer
  from the prompt's last token on (CAA, SADI) are scored with evaluate.fast.PrefixScorer: every
  prompt but its last token is prefilled ONCE, unsteered, and that KV cache is reused by every
  cell of the grid (the model is causal, so those keys and values cannot change). Plans that
  steer earlier prompt tokens (ActAdd's prefix:n) are scored with a full forward per cell.
- scorer (e.g. VADER): per prompt, scorer(steered greedy completion) - scorer(unsteered one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..evaluate.fast import STEERABLE, PrefixScorer
from ..evaluate.multiple_choice import encode, option_logprobs


def _log_odds(scores) -> list[float]:
    return [float(s[0] - s[1]) for s in scores]


class LogOddsEffect:
    def __init__(self, model, tokenizer, items: Sequence[dict]):
        self.model, self.tokenizer = model, tokenizer
        self.items = [
            {"prompt": it["prompt"], "options": [it["positive"], it["negative"]], "answer": 0} for it in items
        ]
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.prefix = PrefixScorer(model, tokenizer, self.items)  # the one unsteered prefill per prompt
        self.encoded = None
        self.base = _log_odds(self.prefix.scores(None))

    def log_odds(self, plan) -> list[float]:
        if all(iv.positions in STEERABLE for iv in plan.interventions):
            return _log_odds(self.prefix.scores(plan))
        if self.encoded is None:
            self.encoded = encode(self.tokenizer, self.items)
        return _log_odds(option_logprobs(self.model, self.encoded, plan, pad_id=self.pad))

    def per_item(self, plan) -> list[float]:
        return [s - b for s, b in zip(self.log_odds(plan), self.base)]


def scorer_shift(scorer: Callable[[str], float], steered: Sequence[str], base: Sequence[str]) -> list[float]:
    return [float(scorer(s)) - float(scorer(b)) for s, b in zip(steered, base)]


def vader_scorer() -> Callable[[str], float]:
    """VADER's compound sentiment in [-1, 1] (needs the vaderSentiment package)."""
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as exc:
        from ..errors import SteeringError

        raise SteeringError(
            "scorer 'vader' needs the vaderSentiment package (pip install vaderSentiment)"
        ) from exc
    analyzer = SentimentIntensityAnalyzer()
    return lambda text: analyzer.polarity_scores(text)["compound"]


SCORERS = {"vader": vader_scorer}
