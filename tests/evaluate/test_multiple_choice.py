"""The MC harness (batched, prompt + cached options) against a naive per-option loop."""

import pytest
import torch
from transformers import DynamicCache

import steerfast
from steerfast.evaluate.multiple_choice import accuracy_of, evaluate, option_logprobs
from steerfast.recipes.sadi import mask_plan
from steerfast.testing import tiny_model, tiny_tokenizer


def items(seed, n=7, max_opt_len=3, n_opts=(2, 4)):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        prompt = torch.randint(1, 128, (int(torch.randint(2, 10, (1,), generator=g)),), generator=g).tolist()
        k = int(torch.randint(*n_opts, (1,), generator=g))
        opts = [
            torch.randint(
                1, 128, (int(torch.randint(1, max_opt_len + 1, (1,), generator=g)),), generator=g
            ).tolist()
            for _ in range(k)
        ]
        out.append((prompt, opts))
    return out


@torch.no_grad()
def naive_unpadded(model, encoded):
    """One unpadded forward of prompt + option per option."""
    out = []
    for prompt, opts in encoded:
        row = []
        for o in opts:
            lp = torch.log_softmax(model(input_ids=torch.tensor([prompt + o])).logits[0].float(), -1)
            row.append(sum(lp[len(prompt) - 1 + t, o[t]].item() for t in range(len(o))))
        out.append(row)
    return out


@torch.no_grad()
def naive_two_calls(model, encoded, plan):
    """Per option, unpadded: the prompt as the prefill, then the option with its cache (patched)."""
    out = []
    with steerfast.patch(model, plan):
        for prompt, opts in encoded:
            row = []
            for o in opts:
                cache = DynamicCache()
                first = model(input_ids=torch.tensor([prompt]), past_key_values=cache, use_cache=True)
                lp0 = torch.log_softmax(first.logits[0, -1].float(), -1)[o[0]].item()
                mask = torch.ones(1, len(prompt) + len(o), dtype=torch.long)
                nxt = model(
                    input_ids=torch.tensor([o]),
                    attention_mask=mask,
                    past_key_values=first.past_key_values,
                    use_cache=True,
                )
                lp = torch.log_softmax(nxt.logits[0].float(), -1)
                row.append(lp0 + sum(lp[t - 1, o[t]].item() for t in range(1, len(o))))
            out.append(row)
    return out


def max_diff(a, b):
    assert [len(r) for r in a] == [len(r) for r in b]
    return max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
@pytest.mark.parametrize("max_opt_len", [1, 3])
def test_unsteered_matches_naive_loop(arch, max_opt_len):
    model = tiny_model(arch, seed=1)
    enc = items(2, max_opt_len=max_opt_len)
    batched = option_logprobs(model, enc, batch_size=3)
    assert max_diff(batched, naive_unpadded(model, enc)) <= 1e-4


@pytest.mark.parametrize("positions", ["prompt_last", "from_prompt_end"])
def test_steered_matches_per_item_two_call_loop(positions):
    model = tiny_model("llama", seed=3)
    enc = items(4)
    plan = mask_plan(model, "head", [(0, 1), (2, 3)], 3.0, positions) + mask_plan(
        model, "hidden", [(1, 5), (1, 9)], -0.8, positions
    )
    batched = option_logprobs(model, enc, plan, batch_size=4)
    assert max_diff(batched, naive_two_calls(model, enc, plan)) <= 1e-4
    assert max_diff(batched, option_logprobs(model, enc, plan, hooks=True, batch_size=4)) <= 1e-5
    assert max_diff(batched, option_logprobs(model, enc, batch_size=4)) > 1e-2, "the plan must matter"


def test_option_tokens_are_steered_only_from_prompt_end():
    """A plan steering from the prompt's end changes option tokens after the first; prompt_last
    does not steer them, so its scores differ from from_prompt_end's."""
    model = tiny_model("llama", seed=5)
    enc = [([3, 4, 5, 6], [[7, 8, 9], [10, 11, 12]])]
    last = option_logprobs(model, enc, mask_plan(model, "hidden", [(0, 2)], 5.0, "prompt_last"))
    every = option_logprobs(model, enc, mask_plan(model, "hidden", [(0, 2)], 5.0, "from_prompt_end"))
    assert max_diff(last, every) > 1e-3


def test_evaluate_accuracy_counts_argmax():
    model = tiny_model("llama", seed=7)
    tok = tiny_tokenizer()
    rows = [
        {"prompt": p, "options": [" yes", " no", " maybe"], "answer": i % 3}
        for i, p in enumerate(["ab", "the cat", "x y z", "hello there", "q"])
    ]
    res = evaluate(model, tok, rows, batch_size=2)
    enc = [
        (tok(r["prompt"])["input_ids"], [tok(o, add_special_tokens=False)["input_ids"] for o in r["options"]])
        for r in rows
    ]
    ref = naive_unpadded(model, enc)
    preds, acc = accuracy_of(ref, [r["answer"] for r in rows])
    assert res.predictions == preds
    assert res.accuracy == acc and acc.total == 5
    assert max_diff(res.scores, ref) <= 1e-4


def test_evaluate_rejects_empty():
    with pytest.raises(ValueError):
        evaluate(tiny_model("llama"), tiny_tokenizer(), [])
