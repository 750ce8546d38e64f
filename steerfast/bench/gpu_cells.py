"""The cells of `python -m steerfast.bench.gpu`: op microbenchmarks and end-to-end decode.

Every cell checks the section's deadline first; cells past it are listed as skipped (budget),
and a cell that raises is recorded with its error while the others run.
"""

from __future__ import annotations

import time
import traceback

import torch
import torch.nn.functional as F

LLAMA_1B = dict(  # TinyLlama-1.1B's shape (LLaMA-2 architecture)
    vocab_size=32000,
    hidden_size=2048,
    intermediate_size=5632,
    num_hidden_layers=22,
    num_attention_heads=32,
    num_key_value_heads=4,
    max_position_embeddings=2048,
)
GEMMA3_270M = dict(  # Gemma 3 270M's shape, for a random-init stand-in
    vocab_size=262144,
    hidden_size=640,
    intermediate_size=2048,
    num_hidden_layers=18,
    num_attention_heads=4,
    num_key_value_heads=1,
    head_dim=256,
    max_position_embeddings=32768,
)
PROMPT = 32
BANK_K = 8  # distinct configurations in the bank (at most one per row)


# --- ops ------------------------------------------------------------------------------------
def op_cells(cfg: dict, deadline: float, interleaved_ms) -> dict:
    from ..ops import reference

    dev, o = cfg["device"], cfg["ops"]
    rows, skipped = [], []
    for dname in o["dtypes"]:
        dt = getattr(torch, dname)
        for D in o["D"]:
            for M in o["M"]:
                cell = f"{dname} M={M} D={D}"
                if time.perf_counter() > deadline:
                    skipped.append(cell)
                    continue
                try:
                    rows += _op_cell(dev, dt, M, D, o["reps"], interleaved_ms, reference)
                except Exception as exc:
                    rows.append({"cell": cell, "error": f"{type(exc).__name__}: {exc}"})
    return {"rows": rows, "skipped_budget": skipped, "_status": "partial" if skipped else "ok"}


def _op_cell(dev, dt, M, D, reps, interleaved_ms, reference) -> list[dict]:
    S = 8
    g = torch.Generator(device=dev).manual_seed(M * 100003 + D)
    y = torch.randn(M, D, generator=g, device=dev).to(dt)
    slots = torch.randint(-1, S, (M,), generator=g, device=dev).to(torch.int32)
    mask = (torch.rand(S, D, generator=g, device=dev) > 0.9).float()
    delta = torch.full((S,), 1e-3, device=dev)
    bias = torch.randn(S, D, generator=g, device=dev) * 1e-3
    coef = torch.ones(S, device=dev)
    t = (slots, mask, delta, bias, coef)
    rows_t = interleaved_ms(
        {
            "fused": lambda: torch.ops.steerfast.steer_rows_(y, *t),
            "reference": lambda: reference.steer_rows_ref_(y, *t),
            "decomposed": lambda: reference.steer_rows_ref(y, *t),
        },
        reps,
        2,
        dev,
    )
    w = (torch.randn(D, D, generator=g, device=dev) / D**0.5).to(dt)
    lin = (w, None, slots, mask, delta, mask, delta, bias, coef)
    lin_t = interleaved_ms(
        {
            "F.linear": lambda: F.linear(y, w),
            "fused": lambda: torch.ops.steerfast.steer_linear(y, *lin),
            "reference": lambda: reference.steer_linear_ref(y, *lin),
        },
        reps,
        2,
        dev,
    )
    base = {"dtype": str(dt)[6:], "M": M, "D": D}
    med = lambda r, k: r[k]["median_ms"]  # noqa: E731
    return [
        dict(
            base,
            op="steer_rows_",
            ms={k: med(rows_t, k) for k in rows_t},
            fused_vs_reference=med(rows_t, "fused") / med(rows_t, "reference"),
            fused_vs_decomposed=med(rows_t, "fused") / med(rows_t, "decomposed"),
        ),
        dict(
            base,
            op="steer_linear",
            ms={k: med(lin_t, k) for k in lin_t},
            fused_vs_cublas=med(lin_t, "fused") / med(lin_t, "F.linear"),
            fused_vs_reference=med(lin_t, "fused") / med(lin_t, "reference"),
        ),
    ]


# --- end-to-end decode ----------------------------------------------------------------------
def _random_model(arch: str, shape: dict, dtype, device):
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(arch, **shape)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def build_model(name: str, cfg: dict):
    """(model, description). Dry run: the tiny test models of the same architectures, in fp32
    so that its checks can be exact (the GPU run is bf16)."""
    dev, dt = cfg["device"], torch.bfloat16
    if cfg["device"] == "cpu":
        from ..testing import tiny_model

        arch = "llama" if name == "llama-1b" else "gemma3_text"
        return tiny_model(arch, seed=0, num_hidden_layers=2), f"tiny {arch}, fp32 (dry run)"
    if name == "llama-1b":
        return _random_model("llama", LLAMA_1B, dt, dev), "random-init LLaMA, TinyLlama-1.1B shape, bf16"
    try:
        from ..models import load

        model, _ = load("gemma3-270m", dtype=dt)
        return model.to(dev).eval(), "Gemma 3 270M (packaged weights), bf16"
    except Exception as exc:
        desc = f"random-init Gemma 3 270M shape, bf16 (weights unavailable: {type(exc).__name__})"
        return _random_model("gemma3_text", GEMMA3_270M, dt, dev), desc


def _variants(base, batch: int):
    """{name: (clone, undo)}: unsteered, hooks, patch, bank (K distinct all-sadi plans)."""
    import steerfast

    from .plans import build_plan
    from .variants import clone_sharing_weights

    plan = build_plan(base, "all-sadi", seed=0)
    out = {}
    m = clone_sharing_weights(base)
    out["unsteered"] = (m, None)
    m = clone_sharing_weights(base)
    out["hooks"] = (m, steerfast.apply_hooks(m, plan).remove)
    m = clone_sharing_weights(base)
    out["patch"] = (m, steerfast.patch(m, plan).revert)
    m = clone_sharing_weights(base)
    bank = steerfast.SteeringBank(m, slots=BANK_K)
    k = min(batch, BANK_K)
    bank.load_all({s: build_plan(base, "all-sadi", seed=s) for s in range(k)})
    bank.assign([i % k for i in range(batch)])
    out[f"bank (K={k})"] = (m, bank.revert)
    return out


def _eager_step(model, prompt):
    from .decode_loop import GreedySteps

    step = GreedySteps(model, prompt)
    return step, step.prefill_logits.float()


def _decode_cell(base, batch: int, engine: str, cfg: dict, interleaved_ms) -> dict:
    from .compiled import compiled_decode_step

    dev = cfg["device"]
    vocab = base.config.vocab_size
    g = torch.Generator().manual_seed(batch)
    prompt = torch.randint(min(100, vocab // 4), vocab - 1, (batch, PROMPT), generator=g).to(dev)
    variants = _variants(base, batch)
    steps, info = {}, {}
    try:
        with torch.no_grad():
            for name, (m, _) in variants.items():
                try:
                    if engine == "eager":
                        steps[name], first = _eager_step(m, prompt)
                        info[name] = {"first_logits": first}
                    else:
                        cuda = dev == "cuda"
                        steps[name], info[name] = compiled_decode_step(
                            m,
                            prompt,
                            cfg["steps"] + cfg["warmup"],
                            mode="reduce-overhead" if cuda else None,
                            backend="inductor" if cuda else "eager",
                        )
                except Exception as exc:
                    info[name] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            times = interleaved_ms(steps, cfg["steps"], cfg["warmup"], dev)
    finally:
        for _m, undo in variants.values():
            if undo is not None:
                undo()
    hooks = info.get("hooks", {}).get("first_logits")
    base_ms = times.get("unsteered", {}).get("median_ms")
    out = {}
    for name in variants:
        row = {k: v for k, v in info.get(name, {}).items() if k != "first_logits"}
        if name in times:
            row.update(times[name])
            if base_ms:
                row["ratio"] = times[name]["median_ms"] / base_ms
        first = info.get(name, {}).get("first_logits")  # eager: prefill; compiled: first step
        if hooks is not None and first is not None and name not in ("unsteered", "hooks"):
            rows = slice(0, 1) if name.startswith("bank") else slice(None)  # bank row 0 = the plan
            row["max_abs_diff_vs_hooks"] = float((first[rows] - hooks[rows]).abs().max())
        out[name] = row
    return out


def decode_cells(cfg: dict, deadline: float, interleaved_ms) -> dict:
    # the cells in priority order: eager everywhere first, then CUDA graphs at batch 8
    order = [(m, "eager", b) for m in cfg["models"] for b in cfg["batches"]]
    order += [
        (m, "cudagraphs", b) for m in cfg["models"] for b in sorted(cfg["batches"], key=lambda b: b != 8)
    ]
    cells, skipped, models = [], [], {}
    for model_name, engine, batch in order:
        cell = {"model": model_name, "engine": engine, "batch": batch}
        if time.perf_counter() > deadline:
            skipped.append(cell)
            continue
        t0 = time.perf_counter()
        try:
            if model_name not in models:
                models.clear()  # one model resident at a time
                models[model_name] = build_model(model_name, cfg)
            base, desc = models[model_name]
            cell["weights"] = desc
            cell["variants"] = _decode_cell(base, batch, engine, cfg, interleaved_ms)
        except Exception as exc:
            cell["error"] = f"{type(exc).__name__}: {exc}"
            cell["traceback"] = traceback.format_exc()[-2000:]
        finally:
            if engine != "eager":
                torch._dynamo.reset()
            if cfg["device"] == "cuda":
                torch.cuda.empty_cache()
        cell["wall_s"] = round(time.perf_counter() - t0, 1)
        cells.append(cell)
    failed = any("error" in c or any("error" in v for v in c.get("variants", {}).values()) for c in cells)
    return {
        "cells": cells,
        "skipped_budget": skipped,
        "prompt": PROMPT,
        "_status": "partial" if skipped or failed else "ok",
    }


__all__ = ["op_cells", "decode_cells", "build_model", "LLAMA_1B", "GEMMA3_270M"]
