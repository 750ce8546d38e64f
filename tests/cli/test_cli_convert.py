"""`steerfast convert` and `steerfast inspect` as a user runs them (no model needed)."""

import json

import pytest
import torch
from cli_helpers import steerfast
from helpers import required

from steerfast.interop import read
from steerfast.plan import Intervention, SteeringPlan

HINT = {"model_type": "llama", "hidden_size": 576, "num_hidden_layers": 30}


def _vec(seed, d=576):
    return torch.randn(d, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def plan_file(tmp_path):
    plan = SteeringPlan(
        [
            Intervention(4, "mlp.out", "add", _vec(1), "all", 3.0),
            Intervention(12, "mlp.out", "add", _vec(2), "all", 3.0),
        ],
        "caa",
        dict(HINT),
        {"layer": 5, "pairs": 9},
    )
    plan.save(tmp_path / "p.safetensors")
    return tmp_path / "p.safetensors"


def _same(a, b):
    assert (a.method, a.model, a.meta) == (b.method, b.model, b.meta)
    assert [iv.header() for iv in a.interventions] == [iv.header() for iv in b.interventions]
    assert all(torch.equal(x.tensor, y.tensor) for x, y in zip(a.interventions, b.interventions))


def test_convert_safetensors_gguf_round_trip(tmp_path, plan_file):
    res = steerfast("convert", plan_file, tmp_path / "v.gguf")
    assert res.returncode == 0 and "wrote" in res.stdout, res.stderr
    cv = read(tmp_path / "v.gguf")
    assert (cv.convention, cv.model_hint, cv.layer_count, sorted(cv.directions)) == (
        "llamacpp",
        "llama",
        12,
        [4, 12],
    )
    res = steerfast("convert", tmp_path / "v.gguf", tmp_path / "back.safetensors")
    assert res.returncode == 0, res.stderr
    _same(SteeringPlan.load(tmp_path / "back.safetensors"), SteeringPlan.load(plan_file))
    res = steerfast("convert", tmp_path / "v.gguf", tmp_path / "r.gguf", "--convention", "repeng")
    assert res.returncode == 0, res.stderr
    assert read(tmp_path / "r.gguf").convention == "repeng"


def test_convert_steering_vectors_file(tmp_path):
    steering_vectors = required(
        "steering_vectors", "make test installs steering-vectors (--no-deps)"
    )  # steerfast never imports it
    torch.save(steering_vectors.SteeringVector({3: _vec(3)}, "self_attn"), tmp_path / "sv.pt")
    res = steerfast("convert", tmp_path / "sv.pt", tmp_path / "sv.safetensors", "--scale", 2)
    assert res.returncode == 0, res.stderr
    (iv,) = SteeringPlan.load(tmp_path / "sv.safetensors").interventions
    assert (iv.layer, iv.site, iv.strength) == (3, "attn.out", 2.0) and torch.equal(iv.tensor[0], _vec(3))


def test_inspect_prints_writes_json_and_plot(tmp_path, plan_file):
    res = steerfast("inspect", plan_file, "--json", tmp_path / "s.json", "--plot", tmp_path / "n.png")
    assert res.returncode == 0, res.stderr
    assert "2 intervention(s) on layer(s) 4, 12, site(s) mlp.out" in res.stdout
    assert "pairs: 9" in res.stdout and "method caa" in res.stdout
    s = json.loads((tmp_path / "s.json").read_text())
    assert [r["layer"] for r in s["interventions"]] == [4, 12]
    assert s["interventions"][0]["norm"] == pytest.approx(float(_vec(1).norm()), rel=1e-6)
    assert s["interventions"][1]["applied_norm"] == pytest.approx(3.0 * float(_vec(2).norm()), rel=1e-6)
    png = (tmp_path / "n.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_inspect_reads_a_gguf_control_vector(tmp_path, plan_file):
    assert steerfast("convert", plan_file, tmp_path / "v.gguf").returncode == 0
    res = steerfast("inspect", tmp_path / "v.gguf", "--scale", 0.5)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count(" mlp.out ") == 2 and " all " in res.stdout and "0.5" in res.stdout
