"""When laai() returns no plan (a group lasso that zeroes every head), the LAAI experiments
record "no plan" for that cell and go on, and the tables say so: a user gets the unsteered
model there, not a crashed evaluation (the MC run once died on this at λ2 = 0.1)."""

import torch

from steerfast.evaluate.fv_tasks import get_format
from steerfast.experiments.laai import Runner, laai_cell
from steerfast.experiments.laai_report import markdown
from steerfast.testing import tiny_model, tiny_tokenizer


def test_a_zeroed_plan_is_recorded_and_rendered_as_no_plan():
    torch.manual_seed(0)
    model, tok = tiny_model("llama"), tiny_tokenizer()
    tok.padding_side = "left"
    hyper = {"steps": 2, "l2": 1e3}  # a penalty no head survives
    cell = laai_cell(Runner(model, tok, get_format("arrow"), 8), "fv_antonym", 0, 2, 4, hyper)
    assert "zeroed every head" in cell["no_plan"]
    assert "outcomes" not in cell
    doc = {
        "model": "tiny",
        "format": "arrow",
        "demos": 2,
        "test_limit": 4,
        "dev_limit": 0,
        "seeds": [0],
        "select": False,
        "laai_defaults": hyper,
        "tasks": {
            "fv_antonym": {
                "n": 4,
                "zero_shot": {"outcomes": "0100", "correct": 1},
                "seeds": {"0": {"few_shot": {"outcomes": "1100", "correct": 2}, "laai": cell}},
            }
        },
    }
    row = next(line for line in markdown(doc).splitlines() if line.startswith("| fv_antonym"))
    assert "no plan: every head zeroed" in row
    assert row.count("—") == 2  # no paired difference is made up for a plan that does not exist
