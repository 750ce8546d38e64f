"""`steerfast make ablation` on the default model: the plan, `inspect` showing its ablate
entries, and the .gguf output refused with a clear error."""

import pytest
from cli_helpers import steerfast as cli

import steerfast


@pytest.mark.slow
def test_cli_make_ablation_and_inspect(tmp_path):
    out = tmp_path / "abl.safetensors"
    res = cli("make", "ablation", "example:pairs.jsonl", "-o", out, "--layer", 10, "--layers", "3,4")
    assert res.returncode == 0, res.stderr[-3000:]
    plan = steerfast.SteeringPlan.load(out)
    assert [(iv.layer, iv.site, iv.kind) for iv in plan.interventions] == [
        (3, "attn.out", "ablate"),
        (3, "mlp.out", "ablate"),
        (4, "attn.out", "ablate"),
        (4, "mlp.out", "ablate"),
    ]
    shown = cli("inspect", out)
    assert shown.returncode == 0 and shown.stdout.count("ablate") >= 4, shown.stdout
    bad = cli("make", "ablation", "example:pairs.jsonl", "-o", tmp_path / "abl.gguf", "--limit", 3)
    assert bad.returncode == 2 and "cannot be a control vector" in bad.stderr, bad.stderr[-2000:]
