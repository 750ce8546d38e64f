"""Peers' vectors -> plans. steering-vectors is the real library (installed --no-deps by
`make test`; steerfast never imports it): its own `apply` is the oracle. repeng cannot be
installed beside numpy 2, so its ControlVector is reproduced field for field."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from helpers import required

import steerfast
from steerfast.errors import PlanError
from steerfast.interop import from_repeng, from_steering_vector, load_plan, load_steering_vector_file
from steerfast.testing import tiny_model


def SteeringVector(*args, **kwargs):  # noqa: N802  (the peer's class, imported where a test needs it)
    return required("steering_vectors", "make test installs steering-vectors (--no-deps)").SteeringVector(
        *args, **kwargs
    )


D = 64
IDS = torch.tensor([[5, 17, 40, 2, 9, 33, 8]])


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama", seed=3)


def _vec(seed):
    return torch.randn(D, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def _logits(model, plan=None):
    if plan is None:
        return model(input_ids=IDS).logits
    with steerfast.patch(model, plan):
        return model(input_ids=IDS).logits


@pytest.mark.parametrize(
    "layer_type,site", [("decoder_block", "mlp.out"), ("mlp", "mlp.out"), ("self_attn", "attn.out")]
)
def test_steering_vector_file_steers_like_the_library(tmp_path, model, layer_type, site):
    sv = SteeringVector({0: _vec(1), 2: _vec(2)}, layer_type)
    torch.save(sv, tmp_path / "sv.pt")
    plan = load_steering_vector_file(tmp_path / "sv.pt", multiplier=1.5)
    assert [(iv.layer, iv.site, iv.positions, iv.strength) for iv in plan.interventions] == [
        (0, site, "all", 1.5),
        (2, site, "all", 1.5),
    ]
    with torch.no_grad(), sv.apply(model, multiplier=1.5):
        want = model(input_ids=IDS).logits
    got = _logits(model, plan)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert (got - _logits(model)).abs().max() > 1e-2


def test_steering_vector_object_and_dict_files(tmp_path, model):
    sv = SteeringVector({1: _vec(4)})
    from_obj = from_steering_vector(sv, multiplier=-2.0)
    torch.save({"layer_activations": sv.layer_activations, "layer_type": "decoder_block"}, tmp_path / "d.pt")
    torch.save(sv.layer_activations, tmp_path / "bare.pt")
    for path in ("d.pt", "bare.pt"):
        plan = load_plan(tmp_path / path, scale=-2.0)
        assert torch.equal(plan.interventions[0].tensor, from_obj.interventions[0].tensor)
        assert (plan.interventions[0].layer, plan.interventions[0].strength) == (1, -2.0)


def test_steering_vector_errors(tmp_path):
    with pytest.raises(PlanError, match="input_layernorm.*no steerfast site"):
        from_steering_vector(SteeringVector({1: _vec(1)}, "input_layernorm"))
    with pytest.raises(PlanError, match="negative layer"):
        from_steering_vector(SteeringVector({-1: _vec(1)}))
    with pytest.raises(PlanError, match="min_token_index"):
        from_steering_vector(SteeringVector({1: _vec(1)}), min_token_index=3)
    with pytest.raises(PlanError, match="not a SteeringVector"):
        from_steering_vector(object())
    (tmp_path / "junk.pt").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(PlanError, match="not a readable steering-vectors torch file"):
        load_steering_vector_file(tmp_path / "junk.pt")
    with pytest.raises(PlanError, match="direction 2 has size 8, the others 64"):
        from_steering_vector(SteeringVector({1: _vec(1), 2: torch.ones(8)}))


@dataclass
class ControlVector:  # repeng.extract.ControlVector's fields
    model_type: str
    directions: dict


def test_repeng_object_adds_at_block_output(model):
    cv = ControlVector("llama", {1: _vec(7).numpy(), 2: _vec(8).numpy()})
    plan = from_repeng(cv, coeff=0.75)
    assert plan.model == {"model_type": "llama"}
    assert [(iv.layer, iv.site, iv.positions) for iv in plan.interventions] == [
        (1, "mlp.out", "all"),
        (2, "mlp.out", "all"),
    ]

    def control(layer):  # repeng's ControlModule: output[0] + coeff·direction, every token
        v = torch.as_tensor(cv.directions[layer]) * 0.75
        return lambda _m, _i, out: (out[0] + v,) + tuple(out[1:]) if isinstance(out, tuple) else out + v

    handles = [model.model.layers[l].register_forward_hook(control(l)) for l in (1, 2)]
    try:
        want = _logits(model)
    finally:
        for h in handles:
            h.remove()
    torch.testing.assert_close(_logits(model, plan), want, rtol=1e-5, atol=1e-5)


def test_repeng_errors():
    with pytest.raises(PlanError, match="not a repeng ControlVector"):
        from_repeng(object())
    with pytest.raises(PlanError, match="1-D vector"):
        from_repeng(ControlVector("llama", {1: np.ones((2, 3))}))
