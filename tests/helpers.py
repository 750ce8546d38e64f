import importlib

import pytest
import torch

# the LLaMA-family architectures the runtime tests sweep (tests/test_architectures.py covers all 19)
ARCHS = ["llama", "mistral", "qwen2", "qwen3"]


def vader_mean(model, tok, prompts, plan, new_tokens=24):
    """Mean VADER compound score of greedy completions, steered by `plan` (None = unsteered)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    import steerfast

    enc = tok(prompts, return_tensors="pt", padding=True)
    kw = dict(max_new_tokens=new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
    with torch.no_grad():
        if plan is None:
            out = model.generate(**enc, **kw)
        else:
            with steerfast.patch(model, plan):
                out = model.generate(**enc, **kw)
    texts = tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    analyzer = SentimentIntensityAnalyzer()
    return sum(analyzer.polarity_scores(t)["compound"] for t in texts) / len(texts)


def greedy_alone(model, ids, plan, new, logits=False):
    """HF generate of one request alone, greedy, exactly `new` tokens, patched with `plan`
    (None = unsteered): the engine tests' per-request reference."""
    import steerfast

    x = torch.tensor([ids])
    kw = dict(max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0)
    if logits:
        kw.update(return_dict_in_generate=True, output_logits=True)
    with torch.no_grad():
        if plan is None:
            return model.generate(x, attention_mask=torch.ones_like(x), **kw)
        with steerfast.patch(model, plan):
            return model.generate(x, attention_mask=torch.ones_like(x), **kw)


def unit(d, seed):
    """A random unit direction of width d, reproducible from seed."""
    v = torch.randn(d, generator=torch.Generator().manual_seed(seed))
    return v / v.norm()


def required(module: str, how: str):
    """`module`, imported where a test needs it: a test-only package missing here fails that
    test with `how` to install it (never a skip), and the rest of the suite still runs."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        pytest.fail(f"{module} is not installed: {how}", pytrace=False)
