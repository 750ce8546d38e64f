"""`steerfast make` end to end on the default model, from the shipped example files."""

import pytest
import torch
from cli_helpers import steerfast

from steerfast.interop import import_gguf, read
from steerfast.plan import SteeringPlan

pytestmark = pytest.mark.slow


def _ok(res):
    assert res.returncode == 0, res.stderr[-3000:]
    assert "wrote " in res.stdout
    return res


def test_caa_from_jsonl_and_csv_agree_and_write_both_formats(tmp_path):
    _ok(
        steerfast(
            "make",
            "caa",
            "example:pairs.jsonl",
            "-o",
            tmp_path / "caa.safetensors",
            "--layer",
            10,
            "--coeff",
            6,
            "--limit",
            4,
        )
    )
    _ok(
        steerfast(
            "make",
            "caa",
            "example:pairs.csv",
            "-o",
            tmp_path / "caa.gguf",
            "--layer",
            10,
            "--coeff",
            6,
            "--limit",
            4,
            "--allow-positions",
        )
    )
    plan = SteeringPlan.load(tmp_path / "caa.safetensors")
    (iv,) = plan.interventions
    assert (plan.method, iv.layer, iv.site, iv.kind, iv.positions, iv.strength) == (
        "caa",
        9,
        "mlp.out",
        "add",
        "from_prompt_end",
        6.0,
    )
    assert iv.dim == 576 and plan.meta["pairs"] == 4 and 0.1 < float(iv.tensor.norm()) < 1e3
    cv = read(tmp_path / "caa.gguf")
    assert sorted(cv.directions) == [9] and cv.steerfast["positions"] == "from_prompt_end"
    back = import_gguf(tmp_path / "caa.gguf")
    torch.testing.assert_close(back.interventions[0].tensor, iv.tensor, rtol=0, atol=0)
    assert back.interventions[0].strength == 6.0


def test_actadd_from_csv_row(tmp_path):
    res = _ok(
        steerfast(
            "make", "actadd", "example:pairs.csv", "--row", 1, "--layer", 6, "-o", tmp_path / "a.safetensors"
        )
    )
    plan = SteeringPlan.load(tmp_path / "a.safetensors")
    (iv,) = plan.interventions
    assert (
        plan.meta["positive"] == "The concert was wonderful."
        and plan.meta["negative"] == "The concert was terrible."
    )
    assert (iv.layer, iv.site, iv.positions) == (5, "mlp.out", f"prefix:{iv.entries}") and iv.entries >= 4
    assert "prefix:" in res.stdout
