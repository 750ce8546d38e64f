"""`steerfast make` end to end on the default model, from the shipped example files."""
import json

import pytest
import torch

from steerfast.interop import import_gguf, read
from steerfast.plan import SteeringPlan
from test_cli_common import steerfast

pytestmark = pytest.mark.slow


def _ok(res):
    assert res.returncode == 0, res.stderr[-3000:]
    assert "wrote " in res.stdout
    return res


def test_caa_from_jsonl_and_csv_agree_and_write_both_formats(tmp_path):
    _ok(steerfast("make", "caa", "example:pairs.jsonl", "-o", tmp_path / "caa.safetensors",
                  "--layer", 10, "--coeff", 6, "--limit", 4))
    _ok(steerfast("make", "caa", "example:pairs.csv", "-o", tmp_path / "caa.gguf",
                  "--layer", 10, "--coeff", 6, "--limit", 4, "--allow-positions"))
    plan = SteeringPlan.load(tmp_path / "caa.safetensors")
    (iv,) = plan.interventions
    assert (plan.method, iv.layer, iv.site, iv.kind, iv.positions, iv.strength) == \
        ("caa", 9, "mlp.out", "add", "from_prompt_end", 6.0)
    assert iv.dim == 576 and plan.meta["pairs"] == 4 and 0.1 < float(iv.tensor.norm()) < 1e3
    cv = read(tmp_path / "caa.gguf")
    assert sorted(cv.directions) == [9] and cv.steerfast["positions"] == "from_prompt_end"
    back = import_gguf(tmp_path / "caa.gguf")
    torch.testing.assert_close(back.interventions[0].tensor, iv.tensor, rtol=0, atol=0)
    assert back.interventions[0].strength == 6.0


def test_actadd_from_csv_row(tmp_path):
    res = _ok(steerfast("make", "actadd", "example:pairs.csv", "--row", 1, "--layer", 6, "-o", tmp_path / "a.safetensors"))
    plan = SteeringPlan.load(tmp_path / "a.safetensors")
    (iv,) = plan.interventions
    assert plan.meta["positive"] == "The concert was wonderful." and plan.meta["negative"] == "The concert was terrible."
    assert (iv.layer, iv.site, iv.positions) == (5, "mlp.out", f"prefix:{iv.entries}") and iv.entries >= 4
    assert "prefix:" in res.stdout


def test_sadi_from_multiple_choice(tmp_path):
    _ok(steerfast("make", "sadi", "example:mc.jsonl", "--limit", 4, "-k", 3, "--delta", 2,
                  "-o", tmp_path / "s.safetensors"))
    plan = SteeringPlan.load(tmp_path / "s.safetensors")
    assert plan.method == "sadi-head" and plan.meta["pairs"] == 4 and len(plan.meta["units"]) == 3
    assert all(iv.site == "attn.heads" and iv.kind == "scale" and iv.strength == 2.0 for iv in plan.interventions)
    assert sum(int(iv.tensor.sum()) for iv in plan.interventions) == 3 * 64     # 3 heads of d_head 64


def test_sadi_from_prompted_pairs_and_laai_from_csv(tmp_path):
    _ok(steerfast("make", "sadi", "example:sadi_pairs.jsonl", "--element", "hidden", "-k", 5,
                  "-o", tmp_path / "h.safetensors"))
    plan = SteeringPlan.load(tmp_path / "h.safetensors")
    assert plan.method == "sadi-hidden" and sum(int(iv.tensor.sum()) for iv in plan.interventions) == 5
    _ok(steerfast("make", "laai", "example:demos.csv", "--limit", 2, "--steps", 2, "--layers", "3,4",
                  "-o", tmp_path / "l.safetensors"))
    plan = SteeringPlan.load(tmp_path / "l.safetensors")
    assert plan.method == "laai" and plan.meta["demos"] == 2 and plan.meta["layers"] == [3, 4]
    assert [(iv.layer, iv.site) for iv in plan.interventions] == [(3, "attn.out"), (4, "attn.out")]
    assert json.dumps(plan.meta["hyper"]) and plan.meta["hyper"]["steps"] == 2
