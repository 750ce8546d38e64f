"""steerfast.generate under concurrency, on a user's live bank, and with generation configs."""

import threading

import pytest
import torch
from transformers import GenerationConfig

import steerfast
from steerfast.errors import SteeringError
from steerfast.plan import Intervention, SteeringPlan
from steerfast.steered_generation import Steer, generate, stream
from steerfast.testing import tiny_model, tiny_tokenizer

KW = dict(max_new_tokens=5, min_new_tokens=5, do_sample=False)


def _plans(model):
    g = torch.Generator().manual_seed(7)
    h = model.config.hidden_size
    heads = model.model.layers[0].self_attn.o_proj.in_features
    a = SteeringPlan(
        [Intervention(1, "mlp.out", "add", torch.randn(h, generator=g), "from_prompt_end", 1.5)], "a"
    )
    b = SteeringPlan(
        [Intervention(0, "attn.heads", "scale", (torch.rand(heads, generator=g) > 0.5).float(), "all", 1.0)],
        "b",
    )
    c = SteeringPlan([Intervention(2, "attn.out", "add", torch.randn(h, generator=g), "last", -1.5)], "c")
    return a, b, c


def _jobs(model):
    a, b, c = _plans(model)
    return [
        ("generate", ["the cat", "hello there"], [Steer(a), None]),
        ("stream", "steer me", Steer(b)),
        ("generate", ["xy", "one two", "q"], [Steer(c), Steer(a, strength=-2.0), Steer(b)]),
        ("stream", "again", Steer(a, positions="last")),
        ("generate", ["plain"], None),
        ("stream", "to c", Steer(c, strength=5.0)),
    ]


def _run(model, tok, job):
    kind, prompts, steer = job
    if kind == "generate":
        return generate(model, tok, prompts, steer, **KW)
    return "".join(stream(model, tok, prompts, steer, **KW))


def test_concurrent_generate_and_stream_equal_sequential():
    """4 threads x mixed generate / stream, no live bank: each thread's temporary bank is its
    own; every result equals the sequential one; nothing left patched; no deadlock."""
    model, tok = tiny_model("llama", seed=11), tiny_tokenizer()
    jobs = _jobs(model)
    expected = [_run(model, tok, job) for job in jobs]
    assert len(set(map(str, expected))) >= 4  # the jobs are distinguishable
    results, errors = {}, []

    def worker(w):
        try:
            for rep in range(2):
                for k in range(3):
                    j = (w + 2 * k) % len(jobs)
                    results[(w, rep, j)] = _run(model, tok, jobs[j])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "deadlock: a worker did not finish in 120 s"
    assert not errors, errors
    assert len(results) == 4 * 2 * 3
    wrong = [(k, v) for k, v in results.items() if v != expected[k[2]]]
    assert not wrong, f"{len(wrong)} of {len(results)} results differ from sequential: {wrong[:3]}"
    assert getattr(model, "_steerfast_handle", None) is None


def test_generate_on_live_bank_keeps_the_users_slots():
    model, tok = tiny_model("llama", seed=12), tiny_tokenizer()
    a, b, c = _plans(model)
    alone = generate(model, tok, ["hi", "there"], [Steer(c), None], **KW)
    with steerfast.SteeringBank(model, slots=4) as bank:
        bank.load(0, a)
        bank.load(2, b)
        bank.assign([2, 0, -1])
        before = model(input_ids=torch.tensor([[5, 6, 7]] * 3)).logits
        texts = generate(model, tok, ["hi", "there"], [Steer(c), None], **KW)
        assert texts == alone
        assert bank.plans[0] is a and bank.plans[2] is b
        assert bank.plans[1] is None and bank.plans[3] is None
        after = model(input_ids=torch.tensor([[5, 6, 7]] * 3)).logits  # the user's rows again
        assert torch.equal(before, after)
        # a request for a plan the user already loaded reuses its slot: no free slot needed
        bank.load(1, c)
        bank.load(3, c.with_strength(2.0))
        assert generate(model, tok, ["x"], [Steer(a)], **KW) == generate(model, tok, ["x"], [Steer(a)], **KW)
        with pytest.raises(SteeringError, match="hold your plans"):
            generate(model, tok, ["x"], [Steer(a, strength=1.0)], **KW)
        assert [p is not None for p in bank.plans] == [True] * 4


@pytest.mark.parametrize("where", ["model", "argument"])
def test_num_beams_from_a_generation_config(where):
    model, tok = tiny_model("llama", seed=13), tiny_tokenizer()
    a, _, _ = _plans(model)
    prompts, steer = ["the cat", "hello"], [Steer(a), None]
    kw = dict(max_new_tokens=4, do_sample=False)
    by_keyword = generate(model, tok, prompts, steer, num_beams=3, num_return_sequences=2, **kw)
    if where == "model":
        saved = model.generation_config
        model.generation_config = GenerationConfig(num_beams=3, num_return_sequences=2)
        try:
            got = generate(model, tok, prompts, steer, **kw)
        finally:
            model.generation_config = saved
    else:
        got = generate(
            model,
            tok,
            prompts,
            steer,
            generation_config=GenerationConfig(num_beams=3, num_return_sequences=2),
            **kw,
        )
    assert len(got) == 4 and got == by_keyword
