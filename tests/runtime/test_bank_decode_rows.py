"""Decode steps of a bank with a distinct slot per row run whole-tensor (B, D) tables
(runtime/decode.py): no row op in any decode step, and every row's logits equal the hook
oracle of its own plan, across assignment changes and on both realisations (fast, wrapped)."""

import pytest
import torch

import steerfast
from steerfast.plan import Intervention, SteeringPlan
from steerfast.runtime import steered
from steerfast.testing import random_plan, tiny_model
from steerfast.tokens import left_padded

ROWS = [[5, 9, 17, 33, 2, 7], [40, 41, 42], [7, 7, 100, 5], [1, 2, 3, 4, 5, 6], [9, 8, 7]]
NEW = 5


def _plans(model):
    h = model.config.hidden_size
    g = torch.Generator().manual_seed(3)
    a = random_plan(model, seed=21)
    b = random_plan(model, seed=22, policies=("last", "all", "from_prompt_end", "prefix:2", "prompt_last"))
    # two lanes on one side (scale on `last`, add on `all`), composed per row in decode
    c = SteeringPlan(
        [
            Intervention(1, "mlp.out", "scale", (torch.rand(h, generator=g) > 0.5).float(), "last", 0.8),
            Intervention(1, "mlp.out", "add", torch.randn(h, generator=g), "all", -1.2),
            Intervention(0, "attn.out", "add", torch.randn(h, generator=g), "from_prompt_end", 2.0),
        ],
        "two-lanes",
    )
    return [a, b, c]


def _generate(model, ids, mask):
    with torch.no_grad():
        return model.generate(
            ids,
            attention_mask=mask,
            max_new_tokens=NEW,
            min_new_tokens=NEW,
            do_sample=False,
            pad_token_id=0,
            output_logits=True,
            return_dict_in_generate=True,
        )


def _oracle(model, plans, slots, ids, mask):
    """Per row: the logits of each step under hooks of the row's own plan (or unsteered)."""
    by_plan = {}
    for s in sorted(set(slots)):
        if s < 0:
            by_plan[s] = _generate(model, ids, mask)
        else:
            with steerfast.apply_hooks(model, plans[s]):
                by_plan[s] = _generate(model, ids, mask)
    seqs = torch.stack([by_plan[s].sequences[r] for r, s in enumerate(slots)])
    logits = [torch.stack([by_plan[s].logits[t][r] for r, s in enumerate(slots)]) for t in range(NEW)]
    return seqs, logits


def _record_row_ops(monkeypatch):
    calls = []
    real_rows, real_linear = steered.ops.steer_rows_, steered.ops.steer_linear
    monkeypatch.setattr(
        steered.ops, "steer_rows_", lambda y, *a: (calls.append(y.shape[0]), real_rows(y, *a))[1]
    )
    monkeypatch.setattr(
        steered.ops, "steer_linear", lambda x, *a: (calls.append(x.shape[0]), real_linear(x, *a))[1]
    )
    return calls


@pytest.mark.parametrize("arch", ["llama", "qwen3", "gpt2", "gemma3_text", "qwen2_moe"])
def test_distinct_rows_decode_equals_hooks_without_row_ops(arch, monkeypatch):
    model = tiny_model(arch, seed=31)
    plans = _plans(model)
    ids, mask, _ = left_padded(ROWS)
    assignments = ([0, 1, -1, 2, 0], [2, 2, 1, 0, -1], [1, 1, 1, 1, 1])
    want = [_oracle(model, plans, slots, ids, mask) for slots in assignments]
    calls = _record_row_ops(monkeypatch)
    with steerfast.SteeringBank(model, slots=4) as bank:
        bank.load_all(dict(enumerate(plans)))
        for slots, (seqs, logits) in zip(assignments, want):
            calls.clear()
            bank.assign(slots)
            got = _generate(model, ids, mask)
            assert torch.equal(got.sequences, seqs), slots
            for step, (a, b) in enumerate(zip(got.logits, logits)):
                diff = (a - b).abs().max().item()
                assert diff <= 1e-5, f"{arch} rows {slots} step {step}: {diff}"
            prefill_rows = ids.shape[0] * ids.shape[1]
            assert calls and all(n == prefill_rows for n in calls), "decode steps must not call a row op"
            if len(set(slots)) == 1:
                assert bank._decode_key == ("slot", slots[0])
            else:
                assert bank._decode_key == ("rows", tuple(slots))


def test_strength_change_and_reload_reach_the_decode_tables():
    model = tiny_model("llama", seed=32)
    plans = _plans(model)
    ids, mask, _ = left_padded(ROWS)
    slots = [0, 1, 2, -1, 1]
    with steerfast.SteeringBank(model, slots=3) as bank:
        bank.load_all(dict(enumerate(plans)))
        bank.assign(slots)
        _generate(model, ids, mask)  # decode tables built for this assignment
        bank.set_strength(1, -3.0)
        bank.load(2, plans[0])
        got = _generate(model, ids, mask)
        new_plans = [plans[0], plans[1].with_strength(-3.0), plans[0]]
    seqs, logits = _oracle(model, new_plans, slots, ids, mask)
    assert torch.equal(got.sequences, seqs)
    for a, b in zip(got.logits, logits):
        assert (a - b).abs().max().item() <= 1e-5


def test_decode_rows_with_grad_enabled_match_hooks():
    """Tables built inside inference mode still work (and carry no inference tensors) when a
    later decode step runs with grad enabled."""
    model = tiny_model("llama", seed=33)
    plans = _plans(model)
    ids, mask, _ = left_padded(ROWS[:3])
    slots = [0, 2, 1]
    with steerfast.SteeringBank(model, slots=3) as bank:
        bank.load_all(dict(enumerate(plans)))
        bank.assign(slots)
        with torch.inference_mode():
            model(input_ids=ids, attention_mask=mask, use_cache=True)
        out = model(input_ids=ids, attention_mask=mask, use_cache=True)
        nxt = out.logits[:, -1:].argmax(-1)
        m2 = torch.cat([mask, torch.ones(3, 1, dtype=mask.dtype)], 1)
        with torch.inference_mode():  # builds the (B, D) tables in inference mode
            model(input_ids=nxt, attention_mask=m2, past_key_values=out.past_key_values)
        out.past_key_values.crop(-1)
        step = model(input_ids=nxt, attention_mask=m2, past_key_values=out.past_key_values).logits
        step.sum().backward()  # the tables were saved for backward: normal tensors
    for r, s in enumerate(slots):
        with steerfast.apply_hooks(model, plans[s]), torch.no_grad():
            o = model(input_ids=ids[r : r + 1], attention_mask=mask[r : r + 1], use_cache=True)
            want = model(
                input_ids=nxt[r : r + 1], attention_mask=m2[r : r + 1], past_key_values=o.past_key_values
            ).logits
        assert (step[r].detach() - want[0]).abs().max().item() <= 1e-5
