"""Re-measure a committed cell of docs/laai_results.json from its stored settings: LAAI (the
stored DEFAULTS, seed 0) on fv_country_capital, first 40 test items, item by item. Greedy
generation may flip an item on another CPU's BLAS, so the check is agreement on >= 38 of 40
items and the same count within 2, not bit-identity."""

import json
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "laai_results.json"
TASK, SEED, ITEMS = "fv_country_capital", "0", 40


@pytest.mark.slow
def test_committed_laai_cell_re_measures(default_model):
    from steerfast.evaluate.fv_tasks import get_format
    from steerfast.experiments.laai import Runner, laai_cell

    doc = json.loads(RESULTS.read_text())
    stored = doc["tasks"][TASK]["seeds"][SEED]["laai"]["outcomes"][:ITEMS]
    model, tok = default_model
    hyper = dict(doc["laai_defaults"])
    cell = laai_cell(
        Runner(model, tok, get_format(doc["format"]), 32), TASK, int(SEED), doc["demos"], ITEMS, hyper
    )
    agree = sum(a == b for a, b in zip(cell["outcomes"], stored))
    assert agree >= ITEMS - 2, (cell["outcomes"], stored)
    assert abs(cell["correct"] - stored.count("1")) <= 2
    # the zero-shot cell of the same rows, unsteered
    zero = Runner(model, tok, get_format(doc["format"]), 32)
    from steerfast.evaluate.fv_tasks import load_task

    items = load_task(TASK, doc["demos"], 0).test[:ITEMS]
    got = zero.outcomes([zero.fmt.zero_shot(x) for x, _ in items], [y for _, y in items])
    stored_zero = doc["tasks"][TASK]["zero_shot"]["outcomes"][:ITEMS]
    assert sum(a == ("1" if b else "0") for a, b in zip(stored_zero, got)) >= ITEMS - 2
