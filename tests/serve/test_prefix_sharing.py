"""Prefix caching keyed by steering (steerfast/serve/prefix.py) on the real engine.

A tiny random llama (char tokenizer: one token per character, page = 64 tokens) behind the
serve Engine, transformers' continuous batching underneath. Requests sharing a long prefix,
steered differently or not at all, must each give the tokens of their solo
`steerfast.generate`; the cache's own match counts show that blocks are reused within one
configuration and never across two, and that a steered request never shares the block of its
last prompt token (nor later ones).
"""

import asyncio

import pytest
import torch
from helpers import greedy_alone

from steerfast.errors import SteeringError
from steerfast.serve.engine import PAGE, Engine, SteerEntry
from steerfast.serve.params import SamplingParams
from steerfast.serve.prefix import TESTED_TRANSFORMERS, PrefixKeys, check_internals, config_salt
from steerfast.testing import random_plan, tiny_model, tiny_tokenizer

NEW = 6
SYSTEM = ("You are a terse assistant. Answer in one word. " * 6)[:200]  # 200 tokens: 3 full pages
SUFFIXES = ["Q: sky colour?", "Q: grass colour? A:", "Q: 2+2="]


def _model():
    model = tiny_model("llama", seed=3, max_position_embeddings=512)
    model.generation_config.eos_token_id = None
    return model


@pytest.fixture(scope="module")
def plans():
    ref = _model()
    return {
        "all": random_plan(ref, seed=7, policies=("all",) * 5),
        "mixed": random_plan(ref, seed=8),  # prefix:3, from_prompt_end, prompt_last, all, last
        "last": random_plan(ref, seed=9, policies=("last",) * 5),
    }


@pytest.fixture(scope="module")
def reference(plans):
    """Each request alone: HF generate on a second copy of the same weights, under
    steerfast.patch with the request's plan (the engine's own model is patched by its bank)."""
    model = _model()
    cache = {}

    def solo(ids, entries, new=NEW, logprobs=False):
        """Greedy tokens (with logprobs: and each chosen token's log-probability)."""
        k = (tuple(ids), tuple(entries), new)
        if k not in cache:
            plan = None
            if entries:
                (e,) = entries
                plan = plans[e.plan]
                plan = plan if e.strength is None else plan.with_strength(e.strength)
                plan = plan if e.positions is None else plan.with_positions(e.positions)
            out = greedy_alone(model, ids, plan, new, logits=True)
            toks = out.sequences[0, len(ids) :].tolist()
            lps = [torch.log_softmax(lg[0].double(), -1)[t].item() for lg, t in zip(out.logits, toks)]
            cache[k] = toks, lps
        return cache[k] if logprobs else cache[k][0]

    return solo


@pytest.fixture(scope="module")
def engine(plans):
    eng = Engine(
        _model(), tiny_tokenizer(), slots=4, max_prompt_tokens=400, max_new_tokens=64, kv_tokens=8192
    )
    for name, plan in plans.items():
        eng.add_plan(name, plan)
    yield eng
    eng.close()


def _tokens(out) -> list[int]:
    """Engine output tokens (`Generated.token_ids`; transformers' `generated_tokens` before)."""
    ids = getattr(out, "token_ids", None)
    return list(ids if ids is not None else out.generated_tokens)


def ids_of(text):
    return tiny_tokenizer()(text)["input_ids"]


def _run(engine, ids, entries, new=NEW, logprobs=False):
    params = SamplingParams(max_new_tokens=new, logprobs=0) if logprobs else new

    async def go():
        out = None
        async for out in engine.generate(ids, entries, params):
            pass
        return (_tokens(out), list(out.logprobs)) if logprobs else _tokens(out)

    return asyncio.run(go())


def _run_many(engine, jobs):
    async def one(ids, entries):
        out = None
        async for out in engine.generate(ids, entries, NEW):
            pass
        return _tokens(out)

    async def go():
        return await asyncio.gather(*(one(p, e) for p, e in jobs))

    return asyncio.run(go())


def _reused(engine, ids, entries, new=NEW, logprobs=False):
    """(tokens [, logprobs], prompt tokens this request took from shared blocks)."""
    before = engine.prefix_keys.stats.matched_tokens
    out = _run(engine, ids, entries, new, logprobs)
    return out, engine.prefix_keys.stats.matched_tokens - before


# logprobs: paged attention (engine) vs HF's sdpa forward (reference), both fp32. Measured
# noise: the engine *without* prefix cache vs this reference, every CONFIGS entry x the three
# SUFFIXES prompts: max 3.4e-7; sharing the steered last-prompt block (the bug this guards
# against) moved a logprob by 1.2e-3.
LP_TOL = 1e-5


CONFIGS = {
    "none": [],
    "all": [SteerEntry("all")],
    "all-x2": [SteerEntry("all", strength=2.0)],
    "mixed": [SteerEntry("mixed")],
    "last": [SteerEntry("last")],
    "last-prompt_last": [SteerEntry("last", positions="prompt_last")],
}


def test_internals_are_the_ones_written_against(monkeypatch):
    """Passes on transformers as installed; a moved internal fails naming both versions."""
    import transformers
    from transformers.generation.continuous_batching import cache as cache_mod

    check_internals()
    orig = cache_mod.PagedAttentionCache.search_prefix_match

    def renamed(self, rid, ids):  # a parameter renamed upstream
        return orig(self, rid, ids)

    monkeypatch.setattr(cache_mod.PagedAttentionCache, "search_prefix_match", renamed)
    with pytest.raises(SteeringError) as err:
        check_internals()
    msg = str(err.value)
    assert TESTED_TRANSFORMERS in msg and transformers.__version__ in msg
    assert "search_prefix_match" in msg and "--no-prefix-cache" in msg


def test_engine_cache_is_keyed(engine):
    cache = engine.manager.batch_processor.cache
    assert type(cache).__name__ == "KeyedPrefixCache"
    assert cache.use_prefix_sharing and cache.prefix_keys is engine.prefix_keys


def test_salts():
    assert config_salt(None) is None
    a = config_salt((("p", 1, None, None),))
    assert a == config_salt((("p", 1, None, None),))
    assert len({a, config_salt((("p", 2, None, None),)), config_salt((("p", 1, 2.0, None),))}) == 3
    keys = PrefixKeys()
    keys.register("r", (("p", 1, None, None),), 130)
    assert keys.entry("r").limit == 129 and keys.entry("r__child#0") is keys.entry("r")
    keys.register("u", None, 130)
    assert keys.entry("u").limit is None and keys.entry("u").salt is None
    keys.forget("r")
    assert keys.entry("r") is None


@pytest.mark.parametrize("name", list(CONFIGS))
def test_same_configuration_shares_and_each_equals_solo(engine, reference, name):
    entries = CONFIGS[name]
    system = ids_of(SYSTEM)
    first, second = system + ids_of(SUFFIXES[0] + name), system + ids_of(SUFFIXES[1] + name)
    t1, _ = _reused(engine, first, entries)
    (t2, lp2), reused = _reused(engine, second, entries, logprobs=True)
    assert t1 == reference(first, entries)
    ref_t2, ref_lp2 = reference(second, entries, logprobs=True)
    assert t2 == ref_t2
    assert max(abs(a - b) for a, b in zip(lp2, ref_lp2)) <= LP_TOL
    assert reused == 3 * PAGE  # the system prompt's three full pages


def test_never_across_configurations(engine, reference):
    """Each configuration in turn on one new prompt: none takes another's blocks, each
    equals its solo run; then each again, and now each finds its own."""
    prompt = ids_of(SYSTEM[::-1] + "Q: which one?")
    order = ["mixed", "all", "none", "all-x2", "last", "last-prompt_last"]
    for name in order:
        toks, reused = _reused(engine, prompt, CONFIGS[name])
        assert reused == 0, f"{name} reused blocks of another configuration"
        assert toks == reference(prompt, CONFIGS[name])
    for name in order:
        toks, reused = _reused(engine, prompt, CONFIGS[name])
        assert reused == 3 * PAGE, name
        assert toks == reference(prompt, CONFIGS[name])


@pytest.mark.parametrize("name", ["none", "mixed", "last", "last-prompt_last", "all"])
def test_last_prompt_token_and_generated_blocks(engine, reference, name):
    """A 128-token prompt ends in block 1; a second prompt continues it with the first
    request's own 40 generated tokens. Unsteered, the second reuses blocks 0 and 1; steered,
    block 1 holds the steered last prompt token (and after it, generated tokens steered by
    `last` / `from_prompt_end`, here prompt tokens): its KV is not what the second request
    computes there, so only block 0 is reused."""
    entries = CONFIGS[name]
    base = ids_of((SYSTEM + SYSTEM[::-1] + name)[-2 * PAGE :])
    assert len(base) == 2 * PAGE
    gen = _run(engine, base, entries, new=40)
    assert gen == reference(base, entries, new=40)
    longer = base + gen + ids_of("!")
    (toks, lps), reused = _reused(engine, longer, entries, logprobs=True)
    ref_toks, ref_lps = reference(longer, entries, logprobs=True)
    assert toks == ref_toks
    assert max(abs(a - b) for a, b in zip(lps, ref_lps)) <= LP_TOL
    assert reused == (2 * PAGE if not entries else PAGE)


def test_concurrent_mixed_configurations_equal_solo(engine, reference):
    """Eight requests at once, four configurations x two suffixes, after a warm request
    of each: every one reuses the system prompt and equals its solo run."""
    names = ["none", "all", "mixed", "last-prompt_last"]
    system = ids_of(SYSTEM[:150][::-1] + SYSTEM[:50])
    for name in names:
        _run(engine, system + ids_of("warm " + name), CONFIGS[name])
    jobs = [(system + ids_of(s), CONFIGS[n]) for n in names for s in SUFFIXES[:2]]
    before = engine.prefix_keys.stats.matched_requests
    outs = _run_many(engine, jobs)
    assert engine.prefix_keys.stats.matched_requests - before == len(jobs)
    for (ids, entries), toks in zip(jobs, outs):
        assert toks == reference(ids, entries), entries


def test_prefix_cache_off(reference):
    eng = Engine(
        _model(),
        tiny_tokenizer(),
        slots=2,
        max_prompt_tokens=400,
        max_new_tokens=8,
        kv_tokens=4096,
        prefix_cache=False,
    )
    try:
        assert eng.prefix_keys is None
        ids = ids_of(SYSTEM + SUFFIXES[2])
        assert _run(eng, ids, []) == reference(ids, [])
        assert not eng.manager.batch_processor.cache.use_prefix_sharing
    finally:
        eng.close()
