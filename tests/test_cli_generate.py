"""`steerfast generate` on the default model: steered next to unsteered, from a safetensors
plan and the same vector as a llama.cpp control vector."""
import json

import pytest
import torch

from steerfast.interop import export_gguf
from steerfast.plan import Intervention, SteeringPlan
from test_cli_common import steerfast

pytestmark = pytest.mark.slow
HINT = {"model_type": "llama", "hidden_size": 576, "num_hidden_layers": 30}


def test_generate_steers_and_gguf_gives_the_same_text(tmp_path):
    v = torch.randn(576, generator=torch.Generator().manual_seed(0))
    plan = SteeringPlan([Intervention(8, "mlp.out", "add", v / v.norm(), "all", 1.0)], "custom", HINT)
    plan.save(tmp_path / "p.safetensors")
    export_gguf(plan, tmp_path / "p.gguf")
    prompts = ["The weather today is", "My favourite food is"]
    runs = {}
    for name in ("p.safetensors", "p.gguf"):
        res = steerfast("generate", "--plan", tmp_path / name, "--strength", 40, "--tokens", 8,
                        "--out", tmp_path / f"{name}.json", *prompts)
        assert res.returncode == 0, res.stderr[-3000:]
        assert "unsteered:" in res.stdout and "steered (custom, strength 40)" in res.stdout
        runs[name] = json.loads((tmp_path / f"{name}.json").read_text())
    a, b = runs["p.safetensors"], runs["p.gguf"]
    assert a["strengths"] == [40.0] and [r["prompt"] for r in a["results"]] == prompts
    for r in a["results"]:
        assert r["unsteered"] and r["steered"] and r["steered"] != r["unsteered"]
    assert a["results"] == b["results"]
