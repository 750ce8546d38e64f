"""Re-measure committed cells of docs/sadi_results_smollm2-135m-instruct.json from their
stored settings (the study's mask units and s), and render the committed markdown."""

import json
from pathlib import Path

import pytest
import torch

from steerfast.experiments import sadi_report
from steerfast.experiments.sadi_study import KNOBS, VARIANTS

DOCS = Path(__file__).resolve().parents[2] / "docs"
MODEL = "smollm2-135m-instruct"
RESULTS = DOCS / f"sadi_results_{MODEL}.json"


def _results():
    return json.loads(RESULTS.read_text(encoding="utf-8"))


def test_committed_markdown_is_rendered_from_the_json():
    results = _results()
    assert (DOCS / f"sadi_results_{MODEL}.md").read_text(encoding="utf-8") == sadi_report.markdown(results)


@pytest.mark.slow
def test_remeasure_en_fr_official_head_cell():
    from steerfast.evaluate.fast import PrefixScorer
    from steerfast.evaluate.tasks import build
    from steerfast.models import load
    from steerfast.recipes.sadi import mask_plan

    torch.set_num_threads(1)
    cell = _results()["tasks"]["en_fr"]
    v = cell["variants"]["official/head"]
    model, tok = load(MODEL)
    task = build("en_fr", tok, **KNOBS[MODEL]["en_fr"])
    assert task.knobs == cell["knobs"]
    test = PrefixScorer(model, tok, task["test"], task.scoring)
    units = [tuple(u) for u in v["chosen"]["units"]]
    plan = mask_plan(model, "head", units, v["chosen"]["s"] - 1.0, VARIANTS["official"]["positions"])
    n = len(task["test"])
    # another CPU's BLAS may flip a near-tie: allow 2 items of 500
    none = float(test.correct().double().mean())
    steered = float(test.correct(plan).double().mean())
    assert abs(none - cell["none"]["test"]) <= 2 / n
    assert abs(steered - v["test"]) <= 2 / n
    assert abs((steered - none) - v["vs_none"]["diff"]) <= 4 / n
