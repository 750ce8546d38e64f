"""Compiled cells: prefill (torch.compile on the clone, compared with eager) and decode
(fullgraph=True over a StaticCache), side by side with the eager cells' method.

Decode cells: torch.compile(fullgraph=True) over a StaticCache, side by side.

Each variant prefills its own StaticCache eagerly (untimed), then its clone is compiled and
every decode step calls the compiled model with the growing 2-D attention mask and the cache
position, as `generate` does. The first two compiled steps (a static graph, then the one with
a dynamic sequence length) are warm-up, untimed. The first step's logits are compared with
an eager step (recorded) and, across variants, with the compiled hooks of the same sites (a
difference above 1e-3, or any compile error, fails the variant).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from ..kv_cache_arg import cache_arg
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
    model, prompt: torch.Tensor, steps: int, mode: str | None = None, backend: str = "inductor"
) -> tuple[Callable, dict]:
    """(step, info): step() runs one compiled decode step of `model` (a clone, steered its way).

    steps: how many timed and warm-up steps will follow (sizes the cache). mode: torch.compile's
    mode (None = default; "reduce-overhead" = CUDA graphs on GPU); backend: "eager" traces
    with dynamo only (the GPU script's CPU dry run).
    """
    from transformers import StaticCache

    configure_dynamo()
    B, P = prompt.shape
    dev = prompt.device
    size = P + steps + COMPILE_STEPS + 2
    cache = StaticCache(config=model.config, max_cache_len=size)

    def call(fn, ids, pos, kv=cache):
        return fn(
            input_ids=ids,
            attention_mask=torch.ones(B, pos + ids.shape[1], dtype=torch.long, device=dev),
            **cache_arg(model, kv),
            cache_position=torch.arange(pos, pos + ids.shape[1], device=dev),
            use_cache=True,
            logits_to_keep=1,
        )

    t0 = time.perf_counter()
    # the eager reference step on a cache of its own (a static cache written twice at one
    # position is not the same cache: sliding layers count the tokens they were given)
    kv_eager = StaticCache(config=model.config, max_cache_len=size)
    nxt = call(model, prompt, 0, kv_eager).logits[:, -1:].argmax(-1)
    eager = call(model, nxt, P, kv_eager).logits.float()
    del kv_eager
    call(model, prompt, 0)
    compiled = torch.compile(model, fullgraph=True, mode=mode, backend=backend)
    graphs0 = _graph_count()
    first = call(compiled, nxt, P).logits.float()
    info = {
        "compiled_max_abs_diff_vs_eager": float((first - eager).abs().max()),
        "first_logits": first[:, -1],
    }
    state = {"next": first[:, -1:].argmax(-1), "pos": P + 1}

    def step():
        o = call(compiled, state["next"], state["pos"])
        state["next"] = o.logits[:, -1:].argmax(-1)
        state["pos"] += 1

    for _ in range(COMPILE_STEPS - 1):
        step()
    info["compile_s"] = round(time.perf_counter() - t0, 1)
    info["graphs_at_warmup"] = _graph_count() - graphs0
    info["recompiles_timed"] = 0

    def counted():
        before = _graph_count()
        step()
        info["recompiles_timed"] += _graph_count() > before  # a new graph while timed

    return counted, info


def _graph_count() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


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
        steps[v.name] = step
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        v.status, v.reason = "failed", f"compile failed: {type(exc).__name__}: {first}"


def check_against_hooks(built: list, steps: dict, tol: float = 1e-3) -> None:
    """Compiled steered variants against the compiled hooks of the same sites (one code path
    for both: the oracle under compile); the bank on row 0 (slot 0 holds the same plan).
    A difference above `tol` fails the variant."""
    firsts = {v.name: v.info.pop("first_logits", None) for v in built}
    for v in built:
        want = firsts.get(f"hooks[{v.sites}]") if v.sites else None
        got = firsts.get(v.name)
        if want is None or got is None or v.kind == "hooks":
            continue
        rows = slice(0, 1) if v.kind == "bank" else slice(None)
        diff = float((got[rows] - want[rows]).abs().max())
        v.info["compiled_max_abs_diff_vs_hooks"] = diff
        if not diff <= tol:
            v.status, v.reason = "failed", f"compiled logits differ from compiled hooks by {diff:.3g}"
            steps.pop(v.name, None)


__all__ = [
    "check_against_hooks",
    "compile_prefill",
    "compiled_decode",
    "compiled_decode_step",
    "configure_dynamo",
    "COMPILE_STEPS",
]
