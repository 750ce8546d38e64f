"""Monitor readings in generate / stream equal a hook oracle (the decoder layer's input at the
producing position, dot product by hand in fp64), <= 1e-4 for every generated token."""

import pytest
import torch

from steerfast import Monitor
from steerfast.plan import Intervention, SteeringPlan
from steerfast.steered_generation import Steer, generate, stream
from steerfast.testing import tiny_model, tiny_tokenizer

PROMPTS = ["the cat sat", "a", "steering is fast!", "hello there"]
TOL = 1e-4


@pytest.fixture(scope="module")
def model_tok():
    return tiny_model("llama", seed=3), tiny_tokenizer()


def _monitor(model, layer, seed, name, bias=0.0):
    g = torch.Generator().manual_seed(seed)
    return Monitor(layer, torch.randn(model.config.hidden_size, generator=g), name, bias)


def _plan(model):
    g = torch.Generator().manual_seed(11)
    v = torch.randn(model.config.hidden_size, generator=g)
    return SteeringPlan([Intervention(0, "mlp.out", "add", v, "from_prompt_end", 4.0)], "caa")


class Oracle:
    """A plain forward pre-hook on each decoder layer: h at the last position, every forward."""

    def __init__(self, model, layers):
        self.seen = {lay: [] for lay in layers}
        mods = model.model.layers
        self.handles = [
            mods[lay].register_forward_pre_hook(self._hook(lay), with_kwargs=True) for lay in layers
        ]

    def _hook(self, lay):
        def pre(mod, args, kwargs):
            h = args[0] if args else kwargs["hidden_states"]
            self.seen[lay].append(h[:, -1].detach().double().clone())

        return pre

    def readings(self, m, row, n):
        v = m.vector.double()
        return [float(self.seen[m.layer][t][row] @ v + m.bias) for t in range(n)]

    def close(self):
        for h in self.handles:
            h.remove()


def _check(readings, oracle, rows_mon, texts):
    for i, row in enumerate(rows_mon):
        assert set(readings[i]) == {m.name for m in row}
        for m in row:
            got = readings[i][m.name]
            assert len(got) >= 1
            want = oracle.readings(m, i, len(got))
            err = max(abs(a - b) for a, b in zip(got, want))
            assert err <= TOL, (i, m.name, err)


@pytest.mark.parametrize("cache", ["dynamic", "static"])
@pytest.mark.parametrize("steered", [False, True])
def test_generate_equals_oracle_mixed_rows(model_tok, cache, steered):
    model, tok = model_tok
    a, b, c = _monitor(model, 0, 1, "a", 0.5), _monitor(model, 2, 2, "b"), _monitor(model, 2, 3, "c", -1.0)
    rows_mon = [[a, b], [c], [], [b, c, a]]
    steer = [Steer(_plan(model)), None, Steer(_plan(model), -3.0), None] if steered else None
    kw = dict(max_new_tokens=7, do_sample=False)
    if cache == "static":
        kw["cache_implementation"] = "static"
    oracle = Oracle(model, [0, 2])
    try:
        texts, readings = generate(model, tok, PROMPTS, steer, monitors=rows_mon, return_monitors=True, **kw)
    finally:
        oracle.close()
    _check(readings, oracle, rows_mon, texts)
    assert len(oracle.seen[2]) == max(len(r.get("b", r.get("c", []))) for r in readings)
    # the readings are the ones of this call's steering: same text as without monitors
    assert texts == generate(model, tok, PROMPTS, steer, **kw)


def test_steering_moves_the_reading(model_tok):
    model, tok = model_tok
    m = Monitor(2, _plan(model).interventions[0].tensor[0], "along")
    kw = dict(max_new_tokens=4, do_sample=False, monitors=[m], return_monitors=True)
    _, base = generate(model, tok, PROMPTS[:2], **kw)
    _, up = generate(model, tok, PROMPTS[:2], [Steer(_plan(model))] * 2, **kw)
    assert up[0]["along"][0] > base[0]["along"][0] + 1.0


def test_eos_cuts_each_rows_readings(model_tok):
    model, tok = model_tok
    m = _monitor(model, 1, 5, "m")
    kw = dict(max_new_tokens=6, do_sample=False, eos_token_id=[1, 40, 50, 60, 70, 80])
    texts, out, readings = generate(
        model, tok, PROMPTS, monitors=[m], return_monitors=True, return_ids=True, **kw
    )
    new = out[:, tok(PROMPTS, return_tensors="pt", padding=True)["input_ids"].shape[1] :]
    for i, row in enumerate(new.tolist()):
        n = next((j + 1 for j, t in enumerate(row) if t in kw["eos_token_id"]), len(row))
        assert len(readings[i]["m"]) == n


@pytest.mark.parametrize("cache", ["dynamic", "static"])
@pytest.mark.parametrize("steered", [False, True])
def test_stream_equals_generate_and_oracle(model_tok, cache, steered):
    model, tok = model_tok
    a, b = _monitor(model, 1, 7, "a", 0.25), _monitor(model, 2, 8, "b")
    steer = Steer(_plan(model), 2.0) if steered else None
    kw = dict(max_new_tokens=9, do_sample=False)
    if cache == "static":
        kw["cache_implementation"] = "static"
    oracle = Oracle(model, [1, 2])
    try:
        pieces = list(stream(model, tok, PROMPTS[2], steer, monitors=[a, b], **kw))
    finally:
        oracle.close()
    text = "".join(p for p, _ in pieces)
    joined = {n: [x for _, r in pieces for x in r[n]] for n in ("a", "b")}
    _check([joined], oracle, [[a, b]], [text])
    texts, readings = generate(model, tok, [PROMPTS[2]], [steer], monitors=[a, b], return_monitors=True, **kw)
    assert text == texts[0]
    for n in ("a", "b"):
        assert max(abs(x - y) for x, y in zip(joined[n], readings[0][n])) <= TOL
        assert len(joined[n]) == len(readings[0][n])


def test_stream_without_monitors_still_yields_text(model_tok):
    model, tok = model_tok
    pieces = list(stream(model, tok, "hello", max_new_tokens=4, do_sample=False))
    assert all(isinstance(p, str) for p in pieces)
    assert "".join(pieces) == generate(model, tok, ["hello"], max_new_tokens=4, do_sample=False)[0]


def test_reader_hooks_are_removed(model_tok):
    model, tok = model_tok
    layer = model.model.layers[1]
    before = len(layer._forward_pre_hooks)
    generate(model, tok, ["x"], monitors=[_monitor(model, 1, 1, "m")], return_monitors=True, max_new_tokens=2)
    assert len(layer._forward_pre_hooks) == before


def test_num_return_sequences_rows_follow_their_prompt(model_tok):
    model, tok = model_tok
    a, b = _monitor(model, 1, 21, "a"), _monitor(model, 2, 22, "b")
    rows_mon = [[a], [b, a]]
    oracle = Oracle(model, [1, 2])
    torch.manual_seed(0)
    try:
        texts, readings = generate(
            model, tok, PROMPTS[:2], monitors=rows_mon, return_monitors=True,
            max_new_tokens=5, do_sample=True, num_return_sequences=2,
        )  # fmt: skip
    finally:
        oracle.close()
    assert len(texts) == len(readings) == 4
    _check(readings, oracle, [[a], [a], [b, a], [b, a]], texts)
