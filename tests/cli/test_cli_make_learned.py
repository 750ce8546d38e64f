"""`steerfast make sadi` and `make laai` end to end on the default model (example files)."""

import json

import pytest
from cli_helpers import steerfast

from steerfast.plan import SteeringPlan

pytestmark = pytest.mark.slow


def _ok(res):
    assert res.returncode == 0, res.stderr[-3000:]
    assert "wrote " in res.stdout
    return res


def test_sadi_from_multiple_choice(tmp_path):
    _ok(
        steerfast(
            "make",
            "sadi",
            "example:mc.jsonl",
            "--limit",
            4,
            "-k",
            3,
            "--delta",
            2,
            "-o",
            tmp_path / "s.safetensors",
        )
    )
    plan = SteeringPlan.load(tmp_path / "s.safetensors")
    assert plan.method == "sadi-head" and plan.meta["pairs"] == 4 and len(plan.meta["units"]) == 3
    assert all(
        iv.site == "attn.heads" and iv.kind == "scale" and iv.strength == 2.0 for iv in plan.interventions
    )
    assert sum(int(iv.tensor.sum()) for iv in plan.interventions) == 3 * 64  # 3 heads of d_head 64


def test_sadi_from_prompted_pairs_and_laai_from_csv(tmp_path):
    _ok(
        steerfast(
            "make",
            "sadi",
            "example:sadi_pairs.jsonl",
            "--element",
            "hidden",
            "-k",
            5,
            "-o",
            tmp_path / "h.safetensors",
        )
    )
    plan = SteeringPlan.load(tmp_path / "h.safetensors")
    assert plan.method == "sadi-hidden" and sum(int(iv.tensor.sum()) for iv in plan.interventions) == 5
    _ok(
        steerfast(
            "make",
            "laai",
            "example:demos.csv",
            "--limit",
            2,
            "--steps",
            2,
            "--layers",
            "3,4",
            "-o",
            tmp_path / "l.safetensors",
        )
    )
    plan = SteeringPlan.load(tmp_path / "l.safetensors")
    assert plan.method == "laai" and plan.meta["demos"] == 2 and plan.meta["layers"] == [3, 4]
    assert [(iv.layer, iv.site) for iv in plan.interventions] == [(3, "attn.out"), (4, "attn.out")]
    assert json.dumps(plan.meta["hyper"]) and plan.meta["hyper"]["steps"] == 2
