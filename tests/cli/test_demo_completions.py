"""`steerfast demo`'s completions with the shipped tuned plans on the default model: none loops
(no completion repeats a word 3-gram more than twice), steered or not. The tune's `loops` damage
is what keeps the shipped plans from looping (docs/tuning.md)."""

import pytest

from steerfast.cli.demo import demo_columns
from steerfast.models import DEFAULT_MODEL
from steerfast.tune.damage import LOOP_REPEATS, max_ngram_count

pytestmark = pytest.mark.slow


def test_no_demo_completion_loops(default_model):
    model, tok = default_model
    columns, (love, sentiment) = demo_columns(model, tok, DEFAULT_MODEL)
    assert "tuned" in love.meta and "tuned" in sentiment.meta  # the shipped plans, not the fallbacks
    signs = 2 if sentiment.meta["tuned"]["both_signs"] else 1
    assert len(columns) == 2 + signs and all(len(v) == 4 for v in columns.values())
    worst = {
        (name, i): max_ngram_count(text) for name, texts in columns.items() for i, text in enumerate(texts)
    }
    looping = {k: columns[k[0]][k[1]] for k, n in worst.items() if n > LOOP_REPEATS}
    assert not looping, looping
    assert all(len(t.split()) >= 10 for texts in columns.values() for t in texts)  # real completions
