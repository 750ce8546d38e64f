"""The keyword under which a model's forward takes its KV cache.

transformers 5.24 renamed `past_key_values` to `cache` (the old name warns and goes in 5.40);
the oldest transformers steerfast supports knows only `past_key_values`. Asking the forward's
signature (per class, once) keeps every call of ours on the name the installed model takes.
"""

from __future__ import annotations

import inspect
from functools import cache


@cache
def _name(cls: type) -> str:
    try:
        params = inspect.signature(cls.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def cache_arg(model, cache) -> dict:
    """{keyword: cache} for `model(**cache_arg(model, cache), ...)`; a PEFT model hands its
    keywords on to its base model, whose forward decides."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return {_name(type(base)): cache}


def output_cache(out):
    """The cache a forward returned (`out.cache` from 5.24 on, `out.past_key_values` before)."""
    got = getattr(out, "cache", None)
    return got if got is not None else out.past_key_values
