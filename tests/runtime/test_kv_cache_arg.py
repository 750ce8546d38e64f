"""`kv_cache_arg`: our calls hand the KV cache to a forward under the name it takes, so a decode
step really continues the cache (a name the forward ignored would decode from nothing)."""

import warnings

import torch
from transformers import DynamicCache

from steerfast.kv_cache_arg import _name, cache_arg, output_cache
from steerfast.testing import tiny_model


def test_a_decode_step_through_cache_arg_continues_the_cache():
    model = tiny_model("llama").eval()
    ids = torch.randint(3, 100, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the deprecated name is never ours
        full = model(input_ids=ids).logits[:, -1]
        out = model(input_ids=ids[:, :-1], **cache_arg(model, DynamicCache()), use_cache=True)
        step = model(input_ids=ids[:, -1:], **cache_arg(model, output_cache(out)), use_cache=True).logits[
            :, -1
        ]
    assert torch.allclose(step, full, atol=1e-5)
    alone = model(input_ids=ids[:, -1:]).logits[:, -1]
    assert not torch.allclose(alone, full, atol=1e-3)  # the check above can tell a lost cache


def test_a_forward_without_cache_takes_past_key_values():
    class Old(torch.nn.Module):
        def forward(self, input_ids, past_key_values=None, use_cache=False):
            return past_key_values

    class New(torch.nn.Module):
        def forward(self, input_ids, cache=None, use_cache=False):
            return cache

    assert _name(Old) == "past_key_values" and _name(New) == "cache"
    assert Old()(None, **cache_arg(Old(), "kv")) == "kv" and New()(None, **cache_arg(New(), "kv")) == "kv"


def test_a_peft_model_takes_its_base_models_name():
    from peft import LoraConfig, get_peft_model

    base = tiny_model("llama").eval()
    peft = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"]))
    assert cache_arg(peft, "kv") == cache_arg(base, "kv") == {_name(type(base)): "kv"}
    ids = torch.randint(3, 100, (1, 6), generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        full = peft(input_ids=ids).logits[:, -1]
        out = peft(input_ids=ids[:, :-1], **cache_arg(peft, DynamicCache()), use_cache=True)
        step = peft(input_ids=ids[:, -1:], **cache_arg(peft, output_cache(out)), use_cache=True).logits[:, -1]
    assert torch.allclose(step, full, atol=1e-5)
