"""Per-request sampling through the engine's seam, driving Engine directly (tiny random llama).

Seeded draws are identical whatever else shares the batch; greedy rows in a mixed batch equal
their solo runs; reported logprobs equal log_softmax of a direct forward of the same prefix
(steered through the hook oracle on an identical model copy). The chi-square check against the
real model's softmax is @slow (the default 135M model).
"""

import asyncio

import pytest
import torch

import steerfast
from steerfast.serve.engine import Engine, SteerEntry
from steerfast.serve.params import SamplingParams
from steerfast.serve.sampling import choose, masked_logits
from steerfast.testing import random_plan, tiny_model, tiny_tokenizer

PROMPTS = ["hello there", "a", "the quick brown fox", "xyzzy 42", "zz", "once upon", "q", "lorem ipsum"]


@pytest.fixture(scope="module")
def eng():
    model, tok = tiny_model("llama", seed=3), tiny_tokenizer()
    model.generation_config.eos_token_id = None
    e = Engine(model, tok, slots=2, kv_tokens=4096, max_batch_tokens=256, max_new_tokens=32)
    e.add_plan("all", random_plan(model, seed=5, policies=("all",) * 5))
    yield e
    e.close()


def ids(eng, prompt):
    return eng.tokenizer(prompt)["input_ids"]


async def one(eng, prompt, params, entries=(), stream=False):
    out = None
    async for out in eng.generate(ids(eng, prompt), list(entries), params, stream):
        pass
    return out


def run(coro):
    return asyncio.run(coro)


async def together(eng, jobs):
    return await asyncio.gather(*(one(eng, *j) for j in jobs))


def test_seeded_request_is_identical_alone_and_with_seven_others(eng):
    p = SamplingParams(12, temperature=1.3, top_p=0.95, seed=1234)
    alone = run(one(eng, PROMPTS[0], p)).token_ids
    others = [(q, SamplingParams(12, temperature=0.9, seed=i)) for i, q in enumerate(PROMPTS[1:])]
    for round_ in range(2):
        got = run(together(eng, [(PROMPTS[0], p)] + others[round_:] + others[:round_]))
        assert got[0].token_ids == alone
    other_seed = run(one(eng, PROMPTS[0], SamplingParams(12, temperature=1.3, top_p=0.95, seed=4321)))
    assert other_seed.token_ids != alone  # the seed matters: the check is not vacuous


def test_mixed_greedy_and_sampled_batch_greedy_rows_equal_solo(eng):
    greedy = [(q, SamplingParams(10)) for q in PROMPTS[:4]]
    solo = [run(one(eng, *g)).token_ids for g in greedy]
    sampled = [
        (q, SamplingParams(10, temperature=1.0, top_k=20, seed=7 + i)) for i, q in enumerate(PROMPTS[4:])
    ]
    got = run(together(eng, [x for pair in zip(greedy, sampled) for x in pair]))
    assert [g.token_ids for g in got[::2]] == solo
    for g in got:  # sampled rows may draw the tokenizer's <eos> (id 1): then "stop", early
        ended = g.token_ids[-1] in eng.eos_ids
        assert g.finish_reason == ("stop" if ended else "length")
        assert ended or len(g.token_ids) == 10


def test_top_k_one_is_greedy_at_any_temperature(eng):
    greedy = run(one(eng, PROMPTS[2], SamplingParams(10))).token_ids
    for t in (0.5, 1.0, 3.0):
        assert (
            run(one(eng, PROMPTS[2], SamplingParams(10, temperature=t, top_k=1, seed=3))).token_ids == greedy
        )


def _direct_logprobs(model, prompt_ids, gen):
    full = torch.tensor([prompt_ids + gen])
    with torch.no_grad():
        logits = model(full).logits[0].float()
    lp = torch.log_softmax(logits, dim=-1)
    P = len(prompt_ids)
    return [lp[P - 1 + i] for i in range(len(gen))]


@pytest.mark.parametrize("steered", [False, True], ids=["unsteered", "steered"])
def test_logprobs_equal_log_softmax_of_a_direct_forward(eng, steered):
    oracle = tiny_model("llama", seed=3)  # same weights, unpatched
    plan = random_plan(oracle, seed=5, policies=("all",) * 5)
    entries = [SteerEntry("all")] if steered else []
    p = SamplingParams(8, temperature=1.0, seed=11, logprobs=3)
    out = run(one(eng, PROMPTS[3], p, entries, stream=True))
    assert len(out.logprobs) == len(out.token_ids) == 8
    if steered:
        with steerfast.apply_hooks(oracle, plan):
            want = _direct_logprobs(oracle, ids(eng, PROMPTS[3]), out.token_ids)
    else:
        want = _direct_logprobs(oracle, ids(eng, PROMPTS[3]), out.token_ids)
    for tok, lp, top, w in zip(out.token_ids, out.logprobs, out.top_logprobs, want):
        assert abs(lp - float(w[tok])) <= 1e-4
        v, ix = torch.topk(w, 3)
        assert [t for t, _ in top] == ix.tolist()
        assert max(abs(a - b) for (_, a), b in zip(top, v.tolist())) <= 1e-4
    plain = _direct_logprobs(oracle, ids(eng, PROMPTS[3]), out.token_ids)
    moved = max(float((a - b).abs().max()) for a, b in zip(want, plain))
    assert (moved > 1e-2) == steered  # the plan moves the distribution: the steered check is not vacuous


def test_top_p_and_top_k_masks():
    row = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    keep = lambda **kw: torch.isfinite(masked_logits(row, SamplingParams(1, temperature=1.0, **kw))).tolist()  # noqa: E731
    assert keep(top_p=0.5) == [True, False, False, False]
    assert keep(top_p=0.8) == [True, True, False, False]
    assert keep(top_p=0.81) == [True, True, True, False]
    assert keep(top_k=3) == [True, True, True, False]
    assert keep(top_k=2, top_p=0.99) == [True, True, False, False]


def _chi_square_p(counts, probs, n):
    """p-value of Pearson's chi-square, bins with expected >= 5 and the rest pooled."""
    exp = probs * n
    big = exp >= 5
    obs = torch.cat([counts[big], counts[~big].sum().reshape(1)]).double()
    e = torch.cat([exp[big], exp[~big].sum().reshape(1)]).double()
    keep = e > 0
    obs, e = obs[keep], e[keep]
    stat = float(((obs - e) ** 2 / e).sum())
    dof = len(e) - 1
    return float(torch.special.gammaincc(torch.tensor(dof / 2.0), torch.tensor(stat / 2.0))), dof


def test_choose_matches_softmax_chi_square():
    logits = torch.randn(1, 50, generator=torch.Generator().manual_seed(0)) * 2
    n = 2000
    counts = torch.zeros(50)
    for s in range(n):
        counts[choose(logits, [SamplingParams(1, temperature=1.0)], [s], [0])[0].token] += 1
    pval, dof = _chi_square_p(counts, torch.softmax(logits[0], -1), n)
    assert dof >= 5 and pval > 1e-3


@pytest.mark.slow
def test_200_engine_samples_match_the_model_softmax():
    from steerfast.models import load

    model, tok = load()
    n = 200

    def next_probs(text):
        with torch.no_grad():  # before the engine patches the model
            return torch.softmax(model(torch.tensor([tok(text)["input_ids"]])).logits[0, -1].float(), -1)

    # the candidate whose next token spreads over the most bins of expected count >= 5
    candidates = [
        "I like to eat",
        "My favourite colour is",
        "Once upon a time, there was a",
        "The weather today",
    ]
    prompt = max(candidates, key=lambda c: int((next_probs(c) * n >= 5).sum()))
    probs = next_probs(prompt)
    e = Engine(model, tok, slots=1, kv_tokens=8192, max_batch_tokens=512, max_new_tokens=4)
    try:
        jobs = [(prompt, SamplingParams(1, temperature=1.0, seed=1000 + i)) for i in range(n)]
        outs = run(together(e, jobs))
        counts = torch.zeros_like(probs)
        for o in outs:
            counts[o.token_ids[0]] += 1
        pval, dof = _chi_square_p(counts, probs, n)
        assert dof >= 3, "the prompt's distribution is too flat to bin"
        assert pval > 1e-3, (pval, dof)
        again = run(together(e, jobs[:20]))  # fixed seeds: the same draws again
        assert [o.token_ids for o in again] == [o.token_ids for o in outs[:20]]
    finally:
        e.close()
