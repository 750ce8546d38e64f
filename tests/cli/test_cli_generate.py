"""`steerfast generate` on the default model: steered next to unsteered, from a safetensors
plan and the same vector as a llama.cpp control vector."""

import json

import pytest
import torch
from cli_helpers import steerfast

from steerfast.interop import export_gguf
from steerfast.plan import Intervention, SteeringPlan

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
        res = steerfast(
            "generate",
            "--plan",
            tmp_path / name,
            "--strength",
            40,
            "--tokens",
            8,
            "--out",
            tmp_path / f"{name}.json",
            *prompts,
        )
        assert res.returncode == 0, res.stderr[-3000:]
        assert "unsteered:" in res.stdout and "steered (custom, strength 40)" in res.stdout
        runs[name] = json.loads((tmp_path / f"{name}.json").read_text())
    a, b = runs["p.safetensors"], runs["p.gguf"]
    assert a["strengths"] == [40.0] and [r["prompt"] for r in a["results"]] == prompts
    for r in a["results"]:
        assert r["unsteered"] and r["steered"] and r["steered"] != r["unsteered"]
    assert a["results"] == b["results"]


def test_generate_adds_several_plans_up(tmp_path):
    """Two control vectors on a small local model = one file holding their sum."""
    from steerfast.interop.crosscheck import write_llamacpp_style
    from steerfast.testing import tiny_model, tiny_tokenizer

    tiny_model("llama").save_pretrained(str(tmp_path / "tiny"))
    tiny_tokenizer().save_pretrained(str(tmp_path / "tiny"))
    a, b = (torch.randn(64, generator=torch.Generator().manual_seed(s)) * 4 for s in (1, 2))
    write_llamacpp_style(tmp_path / "a.gguf", {1: a.numpy()})
    write_llamacpp_style(tmp_path / "b.gguf", {1: b.numpy(), 2: b.numpy()})
    write_llamacpp_style(tmp_path / "sum.gguf", {1: (a + b).numpy(), 2: b.numpy()})
    out = {}
    for name, plans in (("two", ["a.gguf", "b.gguf"]), ("sum", ["sum.gguf"])):
        args = [x for p in plans for x in ("--plan", tmp_path / p)]
        res = steerfast(
            "generate",
            *args,
            "--model",
            tmp_path / "tiny",
            "--tokens",
            6,
            "--out",
            tmp_path / f"{name}.json",
            "abc",
        )
        assert res.returncode == 0, res.stderr[-3000:]
        out[name] = json.loads((tmp_path / f"{name}.json").read_text())["results"]
    assert out["two"] == out["sum"] and out["two"][0]["steered"] != out["two"][0]["unsteered"]
