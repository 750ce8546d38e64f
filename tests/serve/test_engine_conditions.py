"""A conditional plan under continuous batching in the serving engine: requests whose gates
are on and off, packed in the same steps, each generate what the same prompt generates alone
with its gate forced (plan.without_condition() = on; off = unsteered, as every intervention is
gated); every finished request's gate row is released. Also: a request evicted from a small
KV cache and re-prefilled keeps the gate it was given once; a gate averaged over the prompt
reads all of it even where the prompt's prefix sits in the prefix cache."""

import asyncio

import pytest
import torch
from helpers import greedy_alone

from steerfast.conditions import Condition
from steerfast.plan import Intervention, SteeringPlan
from steerfast.recipes.capture import residual_input
from steerfast.serve.engine import PAGE, Engine, SteerEntry
from steerfast.serve.params import SamplingParams
from steerfast.testing import tiny_model, tiny_tokenizer

PROMPTS = ["hello there", "a b c", "the quick brown fox", "xyzzy 42", "zz top", "once upon", "q r", "lorem"]


def _model(seed=6, **kw):
    model = tiny_model("llama", seed=seed, **kw)
    model.generation_config.eos_token_id = None
    return model


def _mean_score(model, ids, vec, layer, start=0):
    """c · mean of the stream entering `layer` over the prompt's tokens from `start` on."""
    with torch.no_grad(), residual_input(model, layer) as seen:
        model(input_ids=torch.tensor([ids]))
    return float(seen[0][0].float()[start:].mean(0) @ vec)


def _strong_ivs(D, g):
    return [
        Intervention(2, "mlp.out", "add", 4 * torch.randn(D, generator=g), "from_prompt_end", 1.0),
        Intervention(2, "attn.out", "add", 4 * torch.randn(D, generator=g), "last", 1.0),
    ]


def _solo(model, ids, plan, new):
    """Greedy tokens of one request alone (HF generate on a copy of the weights, patched), up
    to the tokenizer's EOS as the engine stops."""
    toks = greedy_alone(model, ids, plan, new)[0, len(ids) :].tolist()
    eos = tiny_tokenizer().eos_token_id  # the engine stops there (and reports it)
    return toks[: toks.index(eos) + 1] if eos in toks else toks


async def _one(eng, ids, plan, new):
    out = None
    entries = [SteerEntry(plan)] if plan else []
    async for out in eng.generate(ids, entries, SamplingParams(new), False):
        pass
    return out.token_ids


def _all(eng, jobs, new):
    async def go():
        return await asyncio.gather(*(_one(eng, ids, plan, new) for ids, plan in jobs))

    return asyncio.run(go())


@pytest.fixture(scope="module")
def gated():
    """The model, a plan gated on (mean over the prompt at layer 1) for half of PROMPTS."""
    model, tok = _model(), tiny_tokenizer()
    D = model.config.hidden_size
    g = torch.Generator().manual_seed(3)
    vec = torch.randn(D, generator=g)
    vec = vec / vec.norm()
    rows = [tok(p)["input_ids"] for p in PROMPTS]
    scores = [_mean_score(model, r, vec, 1) for r in rows]
    cut = sorted(scores)
    tau = (cut[3] + cut[4]) / 2
    gates = [s > tau for s in scores]
    assert sum(gates) == 4
    plan = SteeringPlan(_strong_ivs(D, g), "t").when(Condition(1, vec, tau, ">", "mean"))
    assert plan.ungated() is None  # every intervention is gated: off = unsteered
    return model, tok, rows, plan, gates


def test_gated_requests_in_one_batch_equal_their_forced_solo_runs(gated):
    model, tok, rows, plan, gates = gated
    eng = Engine(model, tok, slots=3, kv_tokens=4096, max_batch_tokens=256, max_new_tokens=8)
    try:
        eng.add_plan("cond", plan)
        eng.add_plan("on", plan.without_condition())
        together = _all(eng, [(r, "cond") for r in rows], 8)
        alone = [asyncio.run(_one(eng, r, "on" if on else None, 8)) for r, on in zip(rows, gates)]
        wrong = [asyncio.run(_one(eng, r, None if on else "on", 8)) for r, on in zip(rows, gates)]
        assert together == alone
        assert sum(t != w for t, w in zip(together, wrong)) >= 4  # the gate matters: can fail
        assert eng.bank.gates._store is not None and not eng.bank.gates._store.row_of
    finally:
        eng.close()


def test_an_evicted_and_re_prefilled_request_keeps_its_gate(gated):
    """512 KV tokens = 8 pages for 8 requests of ~2 pages each: transformers evicts requests
    and re-queues them (soft reset: a new RequestState, prompt + generated tokens prefilled
    again from position 0). Each request's gate is started once and kept through that; its
    tokens are those of its solo run with the gate forced to what its prompt decides."""
    model, tok, rows, plan, gates = gated
    new = 64
    eng = Engine(model, tok, slots=2, kv_tokens=512, max_batch_tokens=256, max_new_tokens=new)
    requeued = set()
    step = eng.rows.step

    def watch(states):  # the steps' requests, as the seam hands them to the bank
        requeued.update(fs.state.request_id for fs in states if fs.state._true_initial_tokens)
        return step(states)

    eng.rows.step = watch
    try:
        eng.add_plan("cond", plan)
        eng.add_plan("on", plan.without_condition())
        together = _all(eng, [(r, "cond") for r in rows], new)
        store = eng.bank.gates._store
        assert len(requeued) >= 2  # requests really were evicted and re-prefilled
        assert store.started == len(rows)  # and none was given a second gate
        assert store.resumed >= len(requeued)
        assert not store.row_of  # every finished request's gate released
        requeued.clear()
        # one at a time, a request fits the cache: nothing is evicted
        alone = [asyncio.run(_one(eng, r, "on" if on else None, new)) for r, on in zip(rows, gates)]
        wrong = [asyncio.run(_one(eng, r, None if on else "on", 8)) for r, on in zip(rows, gates)]
        assert not requeued
    finally:
        eng.close()
    assert together == alone
    assert sum(t[:8] != w for t, w in zip(together, wrong)) >= 4  # the gate matters: can fail


@pytest.mark.parametrize("aggregate", ["mean", "last"])
def test_a_mean_gate_reads_the_whole_prompt_even_when_its_prefix_is_cached(aggregate):
    """Two requests share a 3-page prefix under one gated configuration. A cached page is not
    computed again, so the second request's read point sees only its own tail: a mean over
    that tail decides the opposite gate here (the threshold sits between the two means). A
    mean-gated request shares no pages; a last-token gate (the last token is never cached)
    shares them and keeps its gate."""
    model, tok = _model(seed=5, max_position_embeddings=512), tiny_tokenizer()
    D = model.config.hidden_size
    g = torch.Generator().manual_seed(8)
    prefix = torch.randint(3, 128, (3 * PAGE,), generator=g).tolist()
    first, second = prefix + tok("Q: sky?")["input_ids"], prefix + tok("Q: why not?")["input_ids"]
    with torch.no_grad(), residual_input(model, 1) as seen:
        model(input_ids=torch.tensor([second]))
    h = seen[0][0].float()
    whole, tail = h.mean(0), h[3 * PAGE :].mean(0)  # tail: what a cache hit leaves to compute
    vec = (whole - tail) / (whole - tail).norm()  # the direction that tells the two apart
    if aggregate == "mean":
        assert float((whole - tail) @ vec) > 1e-3
        tau = float((whole + tail) @ vec) / 2
        on = True  # the whole prompt is above tau, its tail below
    else:
        tau = float(h[-1] @ vec) - 0.5  # on for `second`
        on = True
    plan = SteeringPlan(_strong_ivs(D, g), "t").when(Condition(1, vec, tau, ">", aggregate))
    ref = _model(seed=5, max_position_embeddings=512)
    want = _solo(ref, second, plan.without_condition() if on else None, 6)
    wrong = _solo(ref, second, None if on else plan.without_condition(), 6)
    assert want != wrong  # the gate matters for `second`: the check can fail
    eng = Engine(model, tok, slots=2, max_prompt_tokens=400, max_new_tokens=6, kv_tokens=4096)
    try:
        eng.add_plan("cond", plan)
        asyncio.run(_one(eng, first, "cond", 6))  # its prefix pages, if it may offer them
        got = asyncio.run(_one(eng, second, "cond", 6))
        matched = eng.prefix_keys.stats.matched_tokens
    finally:
        eng.close()
    assert got == want
    assert matched == (0 if aggregate == "mean" else 3 * PAGE)
