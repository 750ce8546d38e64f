"""How the Engine sets up transformers' continuous batching: the paged cache's config, the
model's end-of-sequence ids, and the most tokens one request can hold."""

from __future__ import annotations

PAGE = 64


def cb_config(kv_tokens: int = 16384, max_batch_tokens: int = 1024, prefix_cache: bool = False):
    """A bounded paged cache (left alone, the engine sizes it from free memory: ~15 GB on CPU).

    Prefix block sharing (`prefix_cache`) may be on only where the cache is keyed by steering
    configuration (serve/prefix.py, as the Engine does): unkeyed, a shared block would carry
    one request's steered KV into another's prompt, so it is off by default.

    CUDA graphs are off explicitly: a captured graph replays the row maps and table pointers
    of its capture, while the bank rebuilds the maps on the host every step and reallocates
    its tables when a plan with a new layout loads. Async double-buffering (on by default
    only with graphs) is off with them.
    """
    from transformers import ContinuousBatchingConfig

    return ContinuousBatchingConfig(
        allow_block_sharing=prefix_cache,
        page_size=PAGE,
        num_blocks=max(8, kv_tokens // PAGE),
        max_batch_tokens=max_batch_tokens,
        use_cuda_graph=False,
        use_async_batching=False,
    )


def model_eos_ids(model, tokenizer) -> list[int]:
    """Every end id: the model's generation_config (int or list), its config, the tokenizer's."""
    ids: list[int] = []
    for src in (getattr(model, "generation_config", None), getattr(model, "config", None), tokenizer):
        v = getattr(src, "eos_token_id", None) if src is not None else None
        for i in v if isinstance(v, (list, tuple)) else [v]:
            if isinstance(i, int) and i >= 0 and i not in ids:
                ids.append(i)
    return ids


def max_request_tokens(manager) -> int:
    """The most tokens (prompt + generated) one request can hold on an empty cache."""
    from transformers.generation.continuous_batching.model_runner import infer_max_single_request_tokens

    return int(infer_max_single_request_tokens(manager.batch_processor.cache))


__all__ = ["PAGE", "cb_config", "model_eos_ids", "max_request_tokens"]
