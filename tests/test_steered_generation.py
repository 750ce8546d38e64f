"""Per-request steering in one batch (SteeringBank + generate): equals each request alone."""

import threading

import pytest
import torch

import steerfast
from steerfast.plan import Intervention, SteeringPlan
from steerfast.steered_generation import Steer, generate
from steerfast.testing import tiny_model, tiny_tokenizer

PROMPTS = [
    "the cat sat",
    "a",
    "steering is fast!",
    "hello there",
    "xy",
    "one two three four",
    "ok",
    "last prompt here",
]


def _plans(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    h, inter = model.config.hidden_size, model.config.intermediate_size
    heads = model.model.layers[0].self_attn.o_proj.in_features
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    m = lambda d: (torch.rand(d, generator=g) > 0.7).float()  # noqa: E731
    caa = SteeringPlan([Intervention(1, "mlp.out", "add", r(h), "from_prompt_end", 3.0)], "caa")
    actadd = SteeringPlan([Intervention(0, "embed.out", "add", r(3, h), "prefix:3", 4.0)], "actadd")
    sadi = SteeringPlan(
        [
            Intervention(1, "attn.heads", "scale", m(heads), "prompt_last", 5.0),
            Intervention(2, "attn.heads", "scale", m(heads), "prompt_last", 5.0),
        ],
        "sadi",
    )
    neurons = SteeringPlan([Intervention(0, "mlp.neurons", "scale", m(inter), "last", -0.8)], "sadi-n")
    laai = SteeringPlan([Intervention(2, "attn.out", "add", r(h), "prompt_last", 2.0)], "laai")
    everywhere = SteeringPlan(
        [
            Intervention(2, "mlp.out", "scale", m(h), "all", 1.5),
            Intervention(2, "mlp.out", "add", r(h), "all", 1.0),
        ],
        "all",
    )
    return caa, actadd, sadi, neurons, laai, everywhere


def _configs(model):
    caa, actadd, sadi, neurons, laai, everywhere = _plans(model)
    return [
        Steer(caa),
        Steer(caa, strength=-2.0),
        Steer(actadd),
        Steer(sadi + caa),
        None,
        Steer(neurons),
        Steer(laai),
        Steer(everywhere),
    ]


@pytest.mark.parametrize("cache", ["dynamic", "static"])
def test_batch_of_8_configs_equals_each_alone(cache):
    model, tok = tiny_model("llama", seed=21), tiny_tokenizer()
    steer = _configs(model)
    kw = dict(
        max_new_tokens=6, min_new_tokens=6, do_sample=False, output_logits=True, return_dict_in_generate=True
    )
    if cache == "static":
        kw["cache_implementation"] = "static"
    _, batch = generate(model, tok, PROMPTS, steer, return_ids=True, **kw)
    width = batch.sequences.shape[1] - 6
    assert getattr(model, "_steerfast_handle", None) is None  # temporary bank reverted
    for i, (prompt, s) in enumerate(zip(PROMPTS, steer)):
        _, alone = generate(model, tok, [prompt], [s], return_ids=True, **kw)
        n = alone.sequences.shape[1] - 6
        assert torch.equal(batch.sequences[i, width:], alone.sequences[0, n:]), (i, s)
        for step_b, step_a in zip(batch.logits, alone.logits):
            assert (step_b[i] - step_a[0]).abs().max().item() <= 1e-5, (i, s)
    plain = generate(model, tok, PROMPTS, None, return_ids=True, **kw)[1]
    steered_rows = [i for i, s in enumerate(steer) if s is not None]
    assert all(not torch.equal(plain.logits[0][i], batch.logits[0][i]) for i in steered_rows)
    assert torch.equal(plain.logits[0][4], batch.logits[0][4])


def test_batch_prefill_logits_equal_single_patch():
    """Prefill logits of each row of a mixed bank forward equal patch(plan) on that row alone."""
    model, tok = tiny_model("qwen2", seed=22), tiny_tokenizer()
    steer = _configs(model)
    tok.padding_side = "left"
    enc = tok(PROMPTS, return_tensors="pt", padding=True)
    pos = (enc["attention_mask"].cumsum(1) - 1).clamp(min=0)
    with steerfast.SteeringBank(model, slots=8) as bank, torch.no_grad():
        bank.load_all({i: s.resolved() for i, s in enumerate(steer) if s is not None})
        bank.assign([-1 if s is None else i for i, s in enumerate(steer)])
        mixed = model(**enc, position_ids=pos).logits
    for i, (prompt, s) in enumerate(zip(PROMPTS, steer)):
        one = tok([prompt], return_tensors="pt")
        with torch.no_grad():
            if s is None:
                alone = model(**one).logits
            else:
                with steerfast.apply_hooks(model, s.resolved()):
                    alone = model(**one).logits
        n = one["input_ids"].shape[1]
        assert (mixed[i, -n:] - alone[0]).abs().max().item() <= 1e-5


def test_bank_errors():
    model = tiny_model("llama", seed=23)
    caa = _plans(model)[0]
    with steerfast.SteeringBank(model, slots=2) as bank:
        with pytest.raises(steerfast.SteeringError, match="slot must be"):
            bank.load(2, caa)
        with pytest.raises(steerfast.SteeringError, match="row slots must be"):
            bank.assign([0, 5])
        bank.load(0, caa)
        bank.assign([0, 0, 0])
        with pytest.raises(steerfast.SteeringError, match="gave 3 row slots, the batch has 2"):
            model(torch.ones(2, 4, dtype=torch.long))
    with steerfast.patch(model, caa), pytest.raises(steerfast.SteeringError, match="single plan"):
        generate(model, tiny_tokenizer(), ["ab"], [caa], max_new_tokens=2)
    with pytest.raises(steerfast.SteeringError, match="2 prompts but 1 steer"):
        generate(model, tiny_tokenizer(), ["ab", "cd"], [caa], max_new_tokens=2)


def test_two_threads_equal_sequential():
    model, tok = tiny_model("mistral", seed=24), tiny_tokenizer()
    steer = _configs(model)
    kw = dict(max_new_tokens=5, do_sample=False)
    jobs = [(PROMPTS[:4], steer[:4]), (PROMPTS[4:], steer[4:])]
    with steerfast.SteeringBank(model, slots=4):
        expected = [generate(model, tok, p, s, **kw) for p, s in jobs]
        for _ in range(3):
            got = [None, None]

            def work(k):
                got[k] = generate(model, tok, *jobs[k], **kw)

            threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert got == expected


def test_stream_yields_the_generated_text():
    from steerfast.steered_generation import stream

    model, tok = tiny_model("llama", seed=25), tiny_tokenizer()
    caa = _plans(model)[0]
    pieces = list(stream(model, tok, "the cat", caa, max_new_tokens=8, do_sample=False))
    full = generate(model, tok, ["the cat"], [caa], max_new_tokens=8, do_sample=False)[0]
    assert "".join(pieces).replace(" ", "") == full.replace(" ", "")
    assert len(pieces) >= 2


def test_small_batches_run_the_fused_linear(monkeypatch):
    """A bank prefill of M <= 8 rows goes through ops.steer_linear; its decode steps run the
    whole-tensor row tables (runtime/decode.py), no row op; both equal alone-runs."""
    from steerfast.runtime import steered

    model, tok = tiny_model("llama", seed=26), tiny_tokenizer()
    caa, actadd, sadi, neurons, laai, _ = _plans(model)
    steer = [Steer(caa), Steer(sadi), None, Steer(neurons)]
    prompts = ["a", "hi", "ok", "yo"]  # 4 rows x 2 columns: an 8-row prefill
    calls = []
    real = steered.ops.steer_linear
    monkeypatch.setattr(steered.ops, "steer_linear", lambda x, *a: (calls.append(x.shape[0]), real(x, *a))[1])
    kw = dict(max_new_tokens=4, min_new_tokens=4, do_sample=False)
    _, batch = generate(model, tok, prompts, steer, return_ids=True, **kw)
    assert calls and all(n == steered.SMALL_M for n in calls), calls
    width = batch.shape[1] - 4
    for i, s in enumerate(steer):
        _, alone = generate(model, tok, [prompts[i]], [s], return_ids=True, **kw)
        assert torch.equal(batch[i, width:], alone[0, -4:])
