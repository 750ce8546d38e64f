"""StaticCache on every tiny architecture (and sliding-window variants): patch, apply_hooks and
generate give the same steered logits as the DynamicCache run, with left padding.

qwen2 / qwen3 hand the decoder a dict of 4D masks per attention type; a sliding window hides
old columns from the last query. Both used to break the position tracker.
"""

import pytest
import torch

import steerfast
from steerfast.adapters import REGISTRY
from steerfast.errors import ModelNotFoundError
from steerfast.steered_generation import Steer, generate
from steerfast.testing import random_plan, tiny_model, tiny_tokenizer

PROMPTS = ["the cat sat on", "hi", "steering!"]
NEW = 5


def _buildable():
    out = []
    for arch in REGISTRY:
        try:
            tiny_model(arch, num_hidden_layers=1)
        except (ModelNotFoundError, ValueError, KeyError):
            continue
        out.append(arch)
    return out


VARIANTS = [(a, {}) for a in _buildable()] + [
    ("mistral", {"sliding_window": 4}),
    ("qwen2", {"use_sliding_window": True, "sliding_window": 4, "max_window_layers": 1}),
]
IDS = [a + ("-sliding" if kw else "") for a, kw in VARIANTS]


def _gen(model, tok, cache, **kw):
    enc = tok(PROMPTS, return_tensors="pt", padding=True)
    args = dict(
        max_new_tokens=NEW,
        min_new_tokens=NEW,
        do_sample=False,
        output_logits=True,
        return_dict_in_generate=True,
        pad_token_id=tok.pad_token_id,
    )
    if cache == "static":
        args["cache_implementation"] = "static"
    with torch.no_grad():
        out = model.generate(**enc, **args, **kw)
    return torch.stack(out.logits), out.sequences


def _close(a, b, what):
    assert a.shape == b.shape, what
    diff = (a - b).abs().max().item()
    assert diff <= 1e-4, f"{what}: max |logit diff| {diff:.3g}"


@pytest.mark.parametrize("arch,overrides", VARIANTS, ids=IDS)
def test_static_cache_patch_hooks_generate(arch, overrides):
    model = tiny_model(arch, seed=5, **overrides)
    tok = tiny_tokenizer()
    tok.padding_side = "left"
    plan = random_plan(model, seed=6)
    with steerfast.apply_hooks(model, plan):
        ref_logits, ref_ids = _gen(model, tok, "dynamic")
        hooks_logits, hooks_ids = _gen(model, tok, "static")
    _close(hooks_logits, ref_logits, "apply_hooks static vs dynamic")
    with steerfast.patch(model, plan):
        patch_logits, _ = _gen(model, tok, "static")
    _close(patch_logits, ref_logits, "patch static vs hooks dynamic")
    texts_static, out = generate(
        model,
        tok,
        PROMPTS,
        [Steer(plan)] * len(PROMPTS),
        return_ids=True,
        cache_implementation="static",
        max_new_tokens=NEW,
        min_new_tokens=NEW,
        do_sample=False,
        output_logits=True,
        return_dict_in_generate=True,
    )
    _close(torch.stack(out.logits), ref_logits, "generate static vs hooks dynamic")
    assert texts_static == tok.batch_decode(ref_ids[:, -NEW:], skip_special_tokens=True)
