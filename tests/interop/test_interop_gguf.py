"""GGUF control vectors: round trips, llama.cpp's and repeng's conventions, the layer mapping
(checked against a hand-written block-output hook), and clear errors."""

import gguf
import numpy as np
import pytest
import torch

import steerfast
from steerfast.errors import PlanError
from steerfast.interop import export_gguf, import_gguf, read
from steerfast.plan import Intervention, SteeringPlan, model_hint
from steerfast.testing import tiny_model

D, L = 64, 3


def _write(path, directions, count_type="int32", hint="llama", arch="controlvector", count=None, extra=None):
    """A control vector written the way llama.cpp (int32) or repeng (uint32) write them."""
    w = gguf.GGUFWriter(str(path), arch)
    w.add_string(f"{arch}.model_hint", hint)
    n = count if count is not None else len(directions)
    (w.add_int32 if count_type == "int32" else w.add_uint32)(f"{arch}.layer_count", n)
    for k, v in (extra or {}).items():
        w.add_string(k, v)
    for name, v in directions.items():
        w.add_tensor(name, np.asarray(v, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


def _vec(seed, d=D):
    return torch.randn(d, generator=torch.Generator().manual_seed(seed))


def _plan(model, layers=(1, 2), strength=2.5, positions="all"):
    ivs = [Intervention(l, "mlp.out", "add", _vec(l), positions, strength) for l in layers]
    return SteeringPlan(ivs, "caa", model_hint(model), {"layer": 2, "pairs": 7})


def _assert_same(a, b):
    assert a.method == b.method and a.model == b.model and a.meta == b.meta
    assert len(a.interventions) == len(b.interventions)
    for x, y in zip(a.interventions, b.interventions):
        assert x.header() == y.header()
        assert torch.equal(x.tensor, y.tensor)


def test_round_trip_llamacpp(tmp_path, model):
    plan = _plan(model)
    export_gguf(plan, tmp_path / "v.gguf")
    _assert_same(import_gguf(tmp_path / "v.gguf", model=model), plan)
    cv = read(tmp_path / "v.gguf")
    assert cv.convention == "llamacpp" and cv.model_hint == "llama" and cv.layer_count == 2
    assert sorted(cv.directions) == [1, 2]
    assert cv.steerfast["strength"] == 2.5 and cv.steerfast["site"] == "mlp.out"
    assert cv.steerfast["layer_base"] == 0 and cv.steerfast["positions"] == "all"


def test_round_trip_repeng_keeps_layer_0(tmp_path, model):
    plan = _plan(model, layers=(0, 2), strength=-1.25)
    export_gguf(plan, tmp_path / "r.gguf", convention="repeng")
    cv = read(tmp_path / "r.gguf")
    assert cv.convention == "repeng" and cv.layer_count == 2 and sorted(cv.directions) == [0, 2]
    _assert_same(import_gguf(tmp_path / "r.gguf"), plan)


def test_round_trip_other_positions_only_when_allowed(tmp_path, model):
    plan = _plan(model, positions="from_prompt_end")
    with pytest.raises(PlanError, match="every token"):
        export_gguf(plan, tmp_path / "p.gguf")
    export_gguf(plan, tmp_path / "p.gguf", allow_positions=True)
    _assert_same(import_gguf(tmp_path / "p.gguf"), plan)


def test_mixed_strengths_and_duplicate_layers_fold_into_the_vectors(tmp_path, model):
    a, b = _vec(1), _vec(2)
    plan = SteeringPlan(
        [Intervention(1, "mlp.out", "add", a, "all", 2.0), Intervention(1, "mlp.out", "add", b, "all", -3.0)],
        "x",
        model_hint(model),
    )
    export_gguf(plan, tmp_path / "m.gguf")
    back = import_gguf(tmp_path / "m.gguf")
    (iv,) = back.interventions
    assert iv.strength == 1.0
    torch.testing.assert_close(iv.tensor[0], 2.0 * a - 3.0 * b)


def test_llamacpp_convention_file_loads_direction_n_at_mlp_out_n(tmp_path, model):
    # as llama.cpp's cvector-generator writes them: direction.1 .. direction.{n_layer-1}, int32 count
    dirs = {f"direction.{n}": _vec(10 + n).numpy() for n in range(1, L)}
    _write(tmp_path / "l.gguf", dirs, "int32", "llama", count=L - 1)
    plan = import_gguf(tmp_path / "l.gguf", scale=0.5, model=model)
    assert [(iv.layer, iv.site, iv.kind, iv.positions, iv.strength) for iv in plan.interventions] == [
        (n, "mlp.out", "add", "all", 0.5) for n in range(1, L)
    ]
    for n, iv in zip(range(1, L), plan.interventions):
        assert torch.equal(iv.tensor[0], _vec(10 + n))
    assert plan.meta["gguf"]["convention"] == "llamacpp" and plan.model["hidden_size"] == D


def test_repeng_convention_file_loads_with_its_keys(tmp_path, model):
    # as repeng's export_gguf writes them: HF model_type hint, uint32 count = len(directions), key 0 allowed
    _write(
        tmp_path / "r.gguf",
        {"direction.0": _vec(1).numpy(), "direction.2": _vec(2).numpy()},
        "uint32",
        "llama",
    )
    plan = import_gguf(tmp_path / "r.gguf", model=model)
    assert [(iv.layer, iv.site) for iv in plan.interventions] == [(0, "mlp.out"), (2, "mlp.out")]
    assert plan.meta["gguf"]["convention"] == "repeng" and plan.meta["gguf"]["layer_count"] == 2


def test_direction_n_steers_like_adding_to_block_n_output(tmp_path, model):
    """The mapping itself: direction.N == a hook adding scale·v to decoder block N's output."""
    v = _vec(5)
    _write(tmp_path / "one.gguf", {"direction.1": v.numpy()})
    plan = import_gguf(tmp_path / "one.gguf", scale=3.0)
    ids = torch.tensor([[5, 17, 40, 2, 9, 33]])
    with torch.no_grad():
        with steerfast.patch(model, plan):
            got = model(input_ids=ids).logits

        def hook(_m, _i, out):
            h = out[0] if isinstance(out, tuple) else out
            h = h + 3.0 * v
            return (h,) + tuple(out[1:]) if isinstance(out, tuple) else h

        handle = model.model.layers[1].register_forward_hook(hook)
        try:
            want = model(input_ids=ids).logits
        finally:
            handle.remove()
        wrong = model.model.layers[2].register_forward_hook(hook)  # one block off
        try:
            off = model(input_ids=ids).logits
        finally:
            wrong.remove()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert (got - off).abs().max() > 1e-3


def test_hidden_size_mismatch_is_clear(tmp_path, model):
    _write(tmp_path / "w.gguf", {"direction.1": np.ones(D + 8)})
    with pytest.raises(PlanError, match=r"does not fit the model: .*hidden_size=72.*hidden_size=64"):
        import_gguf(tmp_path / "w.gguf", model=model)


def test_layer_count_mismatch_is_clear(tmp_path, model):
    _write(tmp_path / "deep.gguf", {"direction.1": np.ones(D), "direction.7": np.ones(D)})
    with pytest.raises(PlanError, match="layer 7 out of range; the model has 3 layers"):
        import_gguf(tmp_path / "deep.gguf", model=model)
    exported = _plan(model)
    exported.model["num_hidden_layers"] = 30
    export_gguf(exported, tmp_path / "n.gguf")
    with pytest.raises(PlanError, match="num_hidden_layers=30"):
        import_gguf(tmp_path / "n.gguf", model=model)


def test_foreign_and_broken_files(tmp_path, model):
    _write(tmp_path / "model.gguf", {"token_embd.weight": np.ones(4)}, arch="llama")
    with pytest.raises(PlanError, match="GGUF 'llama' model, not a control vector"):
        import_gguf(tmp_path / "model.gguf")
    _write(tmp_path / "odd.gguf", {"direction.x": np.ones(4)})
    with pytest.raises(PlanError, match="not a direction.N tensor"):
        import_gguf(tmp_path / "odd.gguf")
    (tmp_path / "text.gguf").write_text("hello")
    with pytest.raises(PlanError, match="not a GGUF file"):
        import_gguf(tmp_path / "text.gguf")
    with pytest.raises(PlanError, match="no control-vector file"):
        import_gguf(tmp_path / "missing.gguf")


def test_export_refuses_what_a_control_vector_cannot_express(tmp_path, model):
    cases = [
        (Intervention(0, "embed.out", "add", _vec(1), "all"), "embed.out"),
        (Intervention(1, "attn.out", "add", _vec(1), "all"), "inside a block"),
        (Intervention(1, "mlp.out", "scale", (_vec(1) > 0).float(), "all"), "can only add"),
        (Intervention(1, "mlp.out", "add", torch.randn(3, D), "prefix:3"), "3 rows"),
        (Intervention(0, "mlp.out", "add", _vec(1), "all"), "block 0"),
    ]
    for iv, msg in cases:
        with pytest.raises(PlanError, match=msg):
            export_gguf(
                SteeringPlan([iv], "x", model_hint(model)), tmp_path / "bad.gguf", allow_positions=True
            )


def test_several_files_add_up_like_llamacpp(tmp_path, model):
    from steerfast.interop import import_ggufs

    a, b = _vec(21), _vec(22)
    _write(tmp_path / "a.gguf", {"direction.1": a.numpy(), "direction.2": a.numpy()})
    _write(tmp_path / "b.gguf", {"direction.1": b.numpy()})
    _write(tmp_path / "sum.gguf", {"direction.1": (2 * a - b).numpy(), "direction.2": (2 * a).numpy()})
    both = import_ggufs([(tmp_path / "a.gguf", 2.0), (tmp_path / "b.gguf", -1.0)], model=model)
    assert len(both.interventions) == 3
    ids = torch.tensor([[3, 14, 15, 9, 26]])
    with torch.no_grad():
        with steerfast.patch(model, both):
            got = model(input_ids=ids).logits
        with steerfast.patch(model, import_gguf(tmp_path / "sum.gguf")):
            want = model(input_ids=ids).logits
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(PlanError, match="no control-vector files"):
        import_ggufs([])
