"""A conditional plan under continuous batching in the serving engine: requests whose gates
are on and off, packed in the same steps, each generate what the same prompt generates alone
with its gate forced (plan.without_condition() = on; off = unsteered, as every intervention is gated); every finished
request's gate row is released."""

import asyncio

import torch

from steerfast.conditions import Condition
from steerfast.plan import Intervention, SteeringPlan
from steerfast.recipes.capture import residual_input
from steerfast.serve.engine import Engine, SteerEntry
from steerfast.serve.params import SamplingParams
from steerfast.testing import tiny_model, tiny_tokenizer

PROMPTS = ["hello there", "a b c", "the quick brown fox", "xyzzy 42", "zz top", "once upon", "q r", "lorem"]


def _score(model, tok, prompt, vec, layer):
    with torch.no_grad(), residual_input(model, layer) as seen:
        model(input_ids=torch.tensor([tok(prompt)["input_ids"]]))
    return float(seen[0][0].float().mean(0) @ vec)


async def _one(eng, prompt, plan):
    out = None
    entries = [SteerEntry(plan)] if plan else []
    async for out in eng.generate(eng.tokenizer(prompt)["input_ids"], entries, SamplingParams(8), False):
        pass
    return out.token_ids


async def _all(eng, jobs):
    return await asyncio.gather(*(_one(eng, p, plan) for p, plan in jobs))


def test_gated_requests_in_one_batch_equal_their_forced_solo_runs():
    model, tok = tiny_model("llama", seed=6), tiny_tokenizer()
    model.generation_config.eos_token_id = None
    D = model.config.hidden_size
    g = torch.Generator().manual_seed(3)
    vec = torch.randn(D, generator=g)
    vec = vec / vec.norm()
    scores = sorted(_score(model, tok, p, vec, 1) for p in PROMPTS)
    tau = (scores[3] + scores[4]) / 2
    gates = [_score(model, tok, p, vec, 1) > tau for p in PROMPTS]
    assert sum(gates) == 4
    ivs = [
        Intervention(2, "mlp.out", "add", 4 * torch.randn(D, generator=g), "from_prompt_end", 1.0),
        Intervention(2, "attn.out", "add", 4 * torch.randn(D, generator=g), "last", 1.0),
    ]
    plan = SteeringPlan(ivs, "t").when(Condition(1, vec, tau, ">", "mean"))
    eng = Engine(model, tok, slots=3, kv_tokens=4096, max_batch_tokens=256, max_new_tokens=8)
    try:
        eng.add_plan("cond", plan)
        eng.add_plan("on", plan.without_condition())
        assert plan.ungated() is None  # every intervention is gated: off = unsteered
        together = asyncio.run(_all(eng, [(p, "cond") for p in PROMPTS]))
        alone = [asyncio.run(_one(eng, p, "on" if on else None)) for p, on in zip(PROMPTS, gates)]
        wrong = [asyncio.run(_one(eng, p, None if on else "on")) for p, on in zip(PROMPTS, gates)]
        assert together == alone
        assert sum(t != w for t, w in zip(together, wrong)) >= 4  # the gate matters: can fail
        assert eng.bank.gates._store is not None and not eng.bank.gates._store.row_of
    finally:
        eng.close()
