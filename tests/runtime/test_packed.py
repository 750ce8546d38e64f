"""Continuous batching (transformers' generate_batch, paged attention) under steering.

patch() (one plan for every request) and a multi-slot bank with per-request slots must give,
token for token, what steerfast.generate gives each request alone. Tiny random llama, greedy.
"""

import pytest
import torch
from transformers import GenerationConfig

import steerfast
from steerfast.positions import CallInfo
from steerfast.runtime.bank import SteeringBank
from steerfast.runtime.packed import PackedRows, packed_row_maps
from steerfast.runtime.rows import row_maps
from steerfast.serve.engine import cb_config
from steerfast.steered_generation import Steer, generate
from steerfast.testing import random_plan, tiny_model, tiny_tokenizer

NEW = 6
PROMPTS = ["hello there", "a", "the quick brown fox", "xyzzy 42"]
POLICY_SETS = [(p,) * 5 for p in ("prefix:3", "prompt_last", "last", "from_prompt_end", "all")] + [
    ("prefix:3", "from_prompt_end", "prompt_last", "all", "last")
]


@pytest.fixture(scope="module")
def tiny():
    model, tok = tiny_model("llama", seed=3), tiny_tokenizer()
    model.generation_config.eos_token_id = None
    return model, tok


def _gc(tok):
    return GenerationConfig(
        max_new_tokens=NEW, do_sample=False, eos_token_id=-1, pad_token_id=tok.pad_token_id
    )


def _solo(model, tok, prompt, steer):
    ids = tok([prompt])["input_ids"][0]
    _, out = generate(
        model,
        tok,
        [prompt],
        steer=[steer],
        max_new_tokens=NEW,
        min_new_tokens=NEW,
        do_sample=False,
        return_ids=True,
    )
    return out[0, len(ids) :].tolist()


def _hf(model, tok, prompt):
    """Plain HF generate (for the apply_hooks oracle)."""
    enc = tok([prompt], return_tensors="pt")
    out = model.generate(
        **enc, max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False, pad_token_id=tok.pad_token_id
    )
    return out[0, enc["input_ids"].shape[1] :].tolist()


def _batch(model, tok):
    ids = [tok(p)["input_ids"] for p in PROMPTS]
    out = model.generate_batch(
        ids, generation_config=_gc(tok), continuous_batching_config=cb_config(2048, 256), progress_bar=False
    )
    return [o.generated_tokens for o in out.values()]


@pytest.mark.parametrize("policies", POLICY_SETS, ids=lambda p: "+".join(dict.fromkeys(p)))
def test_patch_under_generate_batch_equals_solo_generate(tiny, policies):
    model, tok = tiny
    plan = random_plan(model, seed=7, policies=policies)
    refs = [_solo(model, tok, p, Steer(plan)) for p in PROMPTS]
    with steerfast.apply_hooks(model, plan):
        hooked = [_hf(model, tok, p) for p in PROMPTS]
    unsteered = _batch(model, tok)
    with steerfast.patch(model, plan):
        got = _batch(model, tok)
    assert got == refs
    assert got == hooked
    assert got != unsteered  # the plan changes the output: the check is not vacuous


def test_per_request_slots_under_generate_batch(tiny):
    """One engine step mixes four requests with three plans and an unsteered one."""
    model, tok = tiny
    plans = [
        random_plan(model, seed=s, policies=p)
        for s, p in (
            (1, ("prefix:3",) * 5),
            (2, ("prompt_last", "from_prompt_end") * 3),
            (3, ("all", "last") * 3),
        )
    ]
    steer = [Steer(plans[0]), None, Steer(plans[1]), Steer(plans[2], strength=-2.0)]
    refs = [_solo(model, tok, p, s) for p, s in zip(PROMPTS, steer)]
    with SteeringBank(model, slots=4) as bank:
        bank.load_all({0: plans[0], 1: plans[1], 2: plans[2].with_strength(-2.0)})
        rows = PackedRows(bank)
        bank.packed_rows = rows
        rows.slot_of.update({"req_0": 0, "req_2": 1, "req_3": 2})  # generate_batch numbers from 0
        got = _batch(model, tok)
    assert got == refs
    assert len({tuple(g) for g in got}) == len(got)


def test_packed_maps_equal_row_maps_of_the_same_tokens():
    """Two requests packed in one row give the maps row_maps gives them as separate rows."""
    lane_code = torch.tensor([[0, 1, -1], [3, -1, 4]])
    lane_n = torch.tensor([[2, 0, 0], [0, 0, 0]])
    entries = 2
    # request A: prompt 4 tokens, prefill chunk of all 4; request B: prompt 3, decode at position 5
    cu = torch.tensor([0, 4, 5], dtype=torch.int32)
    pos = torch.tensor([[0, 1, 2, 3, 5]])
    for slots in ([0, 1], [1, 0], [2, -1], [0, 2]):
        got = packed_row_maps(
            cu, pos, 2, 5, torch.tensor(slots + [-1]), torch.tensor([4, 3, 0]), lane_code, lane_n, entries
        )
        a = CallInfo(1, 0, 4, torch.ones(1, 4, dtype=torch.long), torch.tensor(4), torch.tensor([4]))
        b = CallInfo(1, 5, 1, torch.ones(1, 6, dtype=torch.long), torch.tensor(3), torch.tensor([3]))
        want = [
            torch.cat([x, y])
            for x, y in zip(
                row_maps(a, torch.tensor(slots[:1]), lane_code, lane_n, entries),
                row_maps(b, torch.tensor(slots[1:]), lane_code, lane_n, entries),
            )
        ]
        assert [m.tolist() for m in got] == [m.tolist() for m in want]


def test_padding_tokens_after_the_last_request_are_untouched():
    cu = torch.tensor([0, 2, 2, 2], dtype=torch.int32)  # one request, then padding
    pos = torch.tensor([[0, 1, 0, 0]])
    maps = packed_row_maps(
        cu,
        pos,
        1,
        4,
        torch.tensor([0, -1]),
        torch.tensor([2, 0]),
        torch.tensor([[4]]),
        torch.tensor([[0]]),
        1,
    )
    assert maps[0].tolist() == [0, 0, -1, -1]
