"""Compiled cells: prefill (torch.compile on the clone, compared with eager) and decode
(fullgraph=True over a StaticCache), side by side with the eager cells' method.

Decode cells: torch.compile(fullgraph=True) over a StaticCache, side by side.

Each variant prefills its own StaticCache eagerly (untimed), then its clone is compiled and
every decode step calls the compiled model with the growing 2-D attention mask and the cache
position, as `generate` does. The first two compiled steps (a static graph, then the one with
a dynamic sequence length) are warm-up, untimed; the first is compared with an eager step at
the same position (a difference above 1e-3, or any compile error, fails the variant).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from .variants import select_backend

COMPILE_STEPS = 2  # untimed compiled steps before timing: static graph, then dynamic length


def configure_dynamo() -> None:
    """Hooks added to a module after another clone was compiled are not guarded by default
    (skip_nnmodule_hook_guards): the compiled unsteered graph would be reused and the hooks
    silently ignored. Guard them, and let every variant keep its own cache entry."""
    import torch._dynamo as dynamo

    dynamo.config.skip_nnmodule_hook_guards = False
    for knob in ("cache_size_limit", "recompile_limit"):
        if hasattr(dynamo.config, knob):
            setattr(dynamo.config, knob, max(64, getattr(dynamo.config, knob)))


def compiled_decode_step(
    model, prompt: torch.Tensor, steps: int, mode: str | None = None
) -> tuple[Callable, dict]:
    """(step, info): step() runs one compiled decode step of `model` (a clone, steered its way).

    steps: how many timed and warm-up steps will follow (sizes the cache). mode: torch.compile's
    mode (None = default; "reduce-overhead" = CUDA graphs on GPU).
    """
    from transformers import StaticCache

    configure_dynamo()
    B, P = prompt.shape
    dev = prompt.device
    cache = StaticCache(config=model.config, max_cache_len=P + steps + COMPILE_STEPS + 2)

    def call(fn, ids, pos):
        return fn(
            input_ids=ids,
            attention_mask=torch.ones(B, pos + ids.shape[1], dtype=torch.long, device=dev),
            past_key_values=cache,
            cache_position=torch.arange(pos, pos + ids.shape[1], device=dev),
            use_cache=True,
            logits_to_keep=1,
        )

    t0 = time.perf_counter()
    out = call(model, prompt, 0)
    nxt = out.logits[:, -1:].argmax(-1)
    eager = call(model, nxt, P).logits.float()  # step P, rewritten below by the compiled step
    compiled = torch.compile(model, fullgraph=True, mode=mode)
    first = call(compiled, nxt, P).logits.float()
    info = {"compiled_max_abs_diff_vs_eager": float((first - eager).abs().max())}
    state = {"next": first[:, -1:].argmax(-1), "pos": P + 1}

    def step():
        o = call(compiled, state["next"], state["pos"])
        state["next"] = o.logits[:, -1:].argmax(-1)
        state["pos"] += 1

    for _ in range(COMPILE_STEPS - 1):
        step()
    info["compile_s"] = round(time.perf_counter() - t0, 1)
    return step, info


def compile_prefill(v, example: Callable[[], object]) -> None:
    """torch.compile the variant's clone, run it once and compare with eager.

    Failures, and compiled logits that differ from the eager variant's, become the status.
    """
    configure_dynamo()
    t0 = time.perf_counter()
    try:
        select_backend(v)
        with torch.no_grad():
            eager = example().logits.float()
        v.model = torch.compile(v.model)
        with torch.no_grad():
            compiled = example().logits.float()
        v.info["compile_s"] = round(time.perf_counter() - t0, 1)
        diff = float((compiled - eager).abs().max())
        v.info["compiled_max_abs_diff_vs_eager"] = diff
        if not diff <= 1e-3:
            v.status, v.reason = "failed", f"compiled logits differ from eager by {diff:.3g}"
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        v.status, v.reason = "failed", f"compile failed: {type(exc).__name__}: {first}"


def compiled_decode(v, prompt, steps_needed: int, steps: dict) -> None:
    """steps[v.name] = a compiled StaticCache decode step of the variant, or a failed status."""
    try:
        select_backend(v)
        with torch.no_grad():
            step, info = compiled_decode_step(v.model, prompt, steps_needed)
        v.info.update(info)
        if not info["compiled_max_abs_diff_vs_eager"] <= 1e-3:
            v.status, v.reason = (
                "failed",
                f"compiled logits differ from eager by {info['compiled_max_abs_diff_vs_eager']:.3g}",
            )
            return
        steps[v.name] = step
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        v.status, v.reason = "failed", f"compile failed: {type(exc).__name__}: {first}"


__all__ = ["compile_prefill", "compiled_decode", "compiled_decode_step", "configure_dynamo", "COMPILE_STEPS"]
