"""The Monitor artifact: validation like plans, save/load (alone or carried by a plan file)."""

import json

import pytest
import torch

import steerfast
from steerfast import Monitor, PlanError, SteeringPlan, load_monitors, save_monitors
from steerfast.plan import Intervention
from steerfast.steered_generation import generate
from steerfast.testing import tiny_model, tiny_tokenizer


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama", seed=1)


def _vec(d=64, seed=0):
    return torch.randn(d, generator=torch.Generator().manual_seed(seed))


def test_vector_is_stored_unit_fp32():
    m = Monitor(1, _vec().double() * 7, "x", 0.5)
    assert m.vector.dtype == torch.float32
    assert abs(float(m.vector.norm()) - 1.0) < 1e-6
    assert m.bias == 0.5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(layer=-1), "non-negative int"),
        (dict(layer=True), "non-negative int"),
        (dict(vector=torch.full((64,), float("nan"))), "finite and non-zero"),
        (dict(vector=torch.zeros(64)), "finite and non-zero"),
        (dict(vector=torch.ones(2, 64)), "shape"),
        (dict(vector=torch.ones(64, dtype=torch.long)), "floating-point"),
        (dict(bias=float("inf")), "bias"),
        (dict(name="has space"), "name"),
        (dict(name=""), "name"),
    ],
)
def test_bad_monitor_is_refused(kwargs, message):
    args = dict(layer=1, vector=_vec(), name="m", bias=0.0) | kwargs
    with pytest.raises(PlanError, match=message):
        Monitor(**args)


def test_validate_against_the_model(model):
    tok = tiny_tokenizer()
    Monitor(2, _vec(), "ok").validate(model)
    with pytest.raises(PlanError, match="layer 3 out of range"):
        Monitor(3, _vec(), "far").validate(model)
    with pytest.raises(PlanError, match="size 64, the monitor vector 32"):
        Monitor(0, _vec(32), "narrow").validate(model)
    layer = model.model.layers[0]
    before = len(layer._forward_pre_hooks)
    for bad in (Monitor(3, _vec(), "far"), Monitor(0, _vec(32), "narrow")):
        with pytest.raises(PlanError):
            generate(model, tok, ["a"], monitors=[Monitor(0, _vec(), "fine"), bad], return_monitors=True)
    assert len(layer._forward_pre_hooks) == before  # nothing half-installed


def test_bad_arguments_of_generate(model):
    tok = tiny_tokenizer()
    m = Monitor(0, _vec(), "m")
    with pytest.raises(steerfast.SteeringError, match="return_monitors"):
        generate(model, tok, ["a"], monitors=[m], max_new_tokens=1)
    with pytest.raises(steerfast.SteeringError, match="bare Monitor"):
        generate(model, tok, ["a"], monitors=m, return_monitors=True)
    with pytest.raises(steerfast.SteeringError, match="2 prompts but 1"):
        generate(model, tok, ["a", "b"], monitors=[[m]], return_monitors=True)
    with pytest.raises(PlanError, match="two monitors are called"):
        generate(model, tok, ["a"], monitors=[m, Monitor(1, _vec(), "m")], return_monitors=True)
    with pytest.raises(steerfast.SteeringError, match="beam"):
        generate(model, tok, ["a"], monitors=[m], return_monitors=True, num_beams=2)


def test_save_load_round_trip(tmp_path):
    ms = [Monitor(1, _vec(seed=1), "a", 0.25, {"note": "x"}), Monitor(2, _vec(seed=2), "b")]
    save_monitors(tmp_path / "m.safetensors", ms)
    back = load_monitors(tmp_path / "m.safetensors")
    assert [(m.name, m.layer, m.bias, m.meta) for m in back] == [
        (m.name, m.layer, m.bias, m.meta) for m in ms
    ]
    for a, b in zip(ms, back):
        assert torch.equal(a.vector, b.vector)
    assert Monitor.load(tmp_path / "m.safetensors", "b").layer == 2
    with pytest.raises(PlanError, match="no monitor 'zz'"):
        Monitor.load(tmp_path / "m.safetensors", "zz")
    with pytest.raises(PlanError, match="holds 2 monitors"):
        Monitor.load(tmp_path / "m.safetensors")


def test_a_plan_file_carries_monitors(tmp_path):
    plan = SteeringPlan([Intervention(1, "mlp.out", "add", _vec(), "from_prompt_end", 2.0)], "caa")
    path = tmp_path / "p.safetensors"
    save_monitors(path, [Monitor(2, _vec(seed=4), "s", -1.0)], plan=plan)
    back = SteeringPlan.load(path)
    assert torch.equal(back.interventions[0].tensor, plan.interventions[0].tensor)
    assert [m.name for m in load_monitors(path)] == ["s"]
    plan.save(tmp_path / "bare.safetensors")
    assert load_monitors(tmp_path / "bare.safetensors") == []


def test_corrupt_files_are_refused(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(PlanError, match="no monitor file"):
        load_monitors(tmp_path / "none.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(PlanError, match="not a readable"):
        load_monitors(tmp_path / "junk.safetensors")
    header = {"format": "steerfast.monitor/1", "monitors": [{"name": "a", "layer": 0}]}
    save_file(
        {"monitor.0": torch.full((4,), float("nan"))},
        str(tmp_path / "nan.safetensors"),
        metadata={"steerfast": json.dumps(header)},
    )
    with pytest.raises(PlanError, match="finite"):
        load_monitors(tmp_path / "nan.safetensors")
    save_file(
        {"monitor.1": torch.ones(4)},
        str(tmp_path / "miss.safetensors"),
        metadata={"steerfast": json.dumps(header)},
    )
    with pytest.raises(PlanError, match="belong to no monitor"):
        load_monitors(tmp_path / "miss.safetensors")


@pytest.mark.parametrize("what", ["plan", "monitor"])
def test_plan_and_monitor_files_are_refused_alike(tmp_path, what):
    """One reader for both (steerfast/artifact.py): the same checks, the same errors."""
    from safetensors.torch import save_file

    load = SteeringPlan.load if what == "plan" else load_monitors
    with pytest.raises(PlanError, match=f"no {what} file at"):
        load(tmp_path / "none.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json")
    with pytest.raises(PlanError, match=f"junk.safetensors is not a readable safetensors {what}"):
        load(tmp_path / "junk.safetensors")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(PlanError, match=f"foreign.safetensors has no steerfast {what} header"):
        load(tmp_path / "foreign.safetensors")
    broken = {"format": "steerfast.monitor/1", "monitors": [{"name": "a"}]}  # no layer
    if what == "plan":
        broken = {"format": "steerfast.plan/1", "interventions": [], "condition": {"conditions": 3}}
    tensors = {"monitor.0": torch.ones(4)}
    save_file(tensors, str(tmp_path / "broken.safetensors"), metadata={"steerfast": json.dumps(broken)})
    with pytest.raises(PlanError, match=f"broken.safetensors: malformed {what} header"):
        load(tmp_path / "broken.safetensors")


def test_stream_refuses_a_bad_monitor(model):
    from steerfast.steered_generation import stream

    with pytest.raises(PlanError, match="out of range"):
        list(stream(model, tiny_tokenizer(), "a", monitors=[Monitor(7, _vec(), "far")], max_new_tokens=2))
    with pytest.raises(steerfast.SteeringError, match="streamer"):
        list(stream(model, tiny_tokenizer(), "a", streamer=object(), max_new_tokens=2))
