"""Running a matrix: each group's variants side by side, interleaved, in one process.

prefill: one timed forward of (batch, length) prompt tokens per variant per round
         (use_cache=False, logits of the last position only, as generate does).
decode:  every variant prefills the same DECODE_PROMPT-token prompt into its own DynamicCache
         (untimed), takes one warm-up step, then round i times decode step i of every variant
         (greedy, one token per row): `length` per-token samples per variant.
"""

from __future__ import annotations

import gc
import platform
import statistics
import subprocess
import sys
import time

import torch

from .. import ops
from ..hooks import apply_hooks
from ..timing import interleaved, interleaved_steps, quantile
from .compiled import check_against_hooks, compile_prefill, compiled_decode
from .decode_loop import GreedySteps
from .inputs import DECODE_PROMPT, prompt_ids
from .matrix import BIG_LLAMA, MODELS, NOT_IN_MATRIX, Group
from .peers import PEERS, peer_status
from .variants import PlanCache, Variant, build_variant, clone_sharing_weights, fused_reason, select_backend

PROBE_LEN = 16


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- models ---------------------------------------------------------------------------
_MODELS: dict = {}


def get_model(name: str):
    if name not in _MODELS:
        if name == "default":
            from ..models import load

            model, _ = load()
        elif name == "gemma3":
            from ..models import load

            model, _ = load("gemma3-270m")
        elif name == "big":
            from ..testing import tiny_model

            model = tiny_model("llama", 0, **BIG_LLAMA)
        else:
            raise ValueError(f"unknown benchmark model {name!r}")
        model.eval()
        _MODELS[name] = model
    return _MODELS[name]


# --- equivalence ----------------------------------------------------------------------
def _logits(model, ids) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, use_cache=False).logits.float()


def equivalence(base, variants: list[Variant], plans: PlanCache, batch: int) -> None:
    """Each variant's logits on a probe prompt against the hook oracle of the same sites.

    bank rows other than row 0 carry other slots' plans, so the bank compares row 0 (slot 0 is
    the same plan as the others'). Peers are also compared with steerfast's fused patch.
    """
    import steerfast

    probe = prompt_ids(base, batch, PROBE_LEN, seed=7)
    oracle: dict = {None: _logits(base, probe)}
    fused: dict = {}
    for v in variants:
        if not v.ok:
            continue
        if v.sites not in oracle:
            c = clone_sharing_weights(base)
            with apply_hooks(c, plans.plan(v.sites)):
                oracle[v.sites] = _logits(c, probe)
        try:
            select_backend(v)
            out = _logits(v.model, probe)
        except Exception as exc:
            v.status, v.reason = "failed", f"forward: {type(exc).__name__}: {exc}"
            continue
        want = oracle[v.sites]
        rows = slice(0, 1) if v.kind == "bank" else slice(None)
        v.info["max_abs_diff_vs_hooks"] = float((out[rows] - want[rows]).abs().max())
        if v.kind in PEERS and not fused_reason():
            if v.sites not in fused:
                c = clone_sharing_weights(base)
                ops.set_backend("fused")
                with steerfast.patch(c, plans.plan(v.sites)):
                    fused[v.sites] = _logits(c, probe)
            v.info["max_abs_diff_vs_fused"] = float((out - fused[v.sites]).abs().max())
    ops.set_backend("auto")


# --- one group ------------------------------------------------------------------------
def paired(a: list, b: list) -> list:
    """Per-round ratios a_i / b_i of two cases timed in the same rounds."""
    return [x / y for x, y in zip(a, b) if y > 0]


def _noise(results: dict) -> float:
    """The group's noise: spread of the A/A pair (unsteered#2 / unsteered, round by round).

    max(|median - 1|, p75 - p25) of the per-round ratios: how far two identical cases drift
    apart in this run, in the same units as every ratio of the group.
    """
    a = results.get("unsteered")
    b = results.get("unsteered#2")
    if not a or not b or not a.get("samples") or not b.get("samples"):
        return float("nan")
    r = paired(b["samples"], a["samples"])
    if len(r) < 2:
        return float("nan")
    return max(abs(statistics.median(r) - 1.0), quantile(r, 0.75) - quantile(r, 0.25))


def _prefill_samples(group: Group, base, built: list[Variant], before, clock: str) -> dict:
    """One timed forward of (batch, length) prompt tokens per variant per round, interleaved."""
    ids = prompt_ids(base, group.batch, group.length, seed=1)
    calls = {}
    for v in built:
        if not v.ok:
            continue
        calls[v.name] = lambda v=v: v.model(input_ids=ids, use_cache=False, logits_to_keep=1)
        if group.engine == "compile":
            compile_prefill(v, calls[v.name])
            if not v.ok:
                del calls[v.name]
    return interleaved(
        calls, rounds=group.rounds, warmup=group.warmup, before=before, rotate=True, clock=clock
    )


def _decode_step(base, v: Variant, prompt):
    """v's decode step after an untimed prefill of `prompt` into its own cache (None: it failed)."""
    try:
        select_backend(v)
        return GreedySteps(v.model, prompt)
    except Exception as exc:
        v.status, v.reason = "failed", f"prefill: {type(exc).__name__}: {exc}"
        return None


def _decode_samples(group: Group, base, built: list[Variant], before, clock: str) -> dict:
    """Round i times greedy decode step i of every variant, after the same DECODE_PROMPT prefill."""
    prompt = prompt_ids(base, group.batch, DECODE_PROMPT, seed=2)
    steps = {}
    for v in built:
        if not v.ok:
            continue
        if group.engine == "compile":
            compiled_decode(v, prompt, group.length + group.warmup, steps)
            continue
        step = _decode_step(base, v, prompt)
        if step is not None:
            steps[v.name] = step
    if group.engine == "compile":
        check_against_hooks(built, steps)
    return interleaved_steps(steps, steps=group.length, warmup=group.warmup, before=before, clock=clock)


def _variant_row(v: Variant, samples: dict) -> dict:
    """One variant's result: its timings and its ratios to the unsteered case and to hooks."""
    row = {"kind": v.kind, "sites": v.sites, "status": v.status, "reason": v.reason, **v.info}
    s = samples.get(v.name)
    if not (v.ok and s):
        return row
    row.update({k: s[k] for k in ("median", "min", "max", "p25", "p75")})
    row["n"] = len(s["samples"])
    row["samples"] = [round(x, 7) for x in s["samples"]]
    # ratios are medians of per-round paired ratios (each round times every variant
    # side by side, so load that hits a round hits all its variants alike)
    base_median = samples.get("unsteered", {}).get("median")
    if base_median:
        r = paired(s["samples"], samples["unsteered"]["samples"])
        row["ratio"] = statistics.median(r)
        row["ratio_min"], row["ratio_max"] = min(r), max(r)
        row["ratio_of_medians"] = s["median"] / base_median
    hooks = samples.get(f"hooks[{v.sites}]") if v.sites else None
    if hooks and v.kind != "hooks":
        row["ratio_vs_hooks"] = statistics.median(paired(s["samples"], hooks["samples"]))
    for c in ("wall", "cpu"):  # both clocks, whichever is primary
        sc, bc = s[c], samples.get("unsteered", {}).get(c)
        row[c] = {k: sc[k] for k in ("median", "min", "max")}
        if bc:
            row[c]["ratio"] = statistics.median(paired(sc["samples"], bc["samples"]))
    return row


def run_group(group: Group, threads: int, clock: str = "cpu") -> dict:
    t_start = time.perf_counter()
    base = get_model(group.model)
    plans = PlanCache(base)
    log(f"group {group.id}: {len(group.variants)} variants")
    built = [build_variant(base, name, plans, group.batch) for name in group.variants]
    equivalence(base, built, plans, group.batch)
    log(f"  setup + equivalence {time.perf_counter() - t_start:.1f} s")
    by_name = {v.name: v for v in built}

    def before(name: str) -> None:
        select_backend(by_name[name])

    with torch.no_grad():
        timed = _prefill_samples if group.phase == "prefill" else _decode_samples
        samples = timed(group, base, built, before, clock)
    ops.set_backend("auto")

    out_variants = {}
    for v in built:
        out_variants[v.name] = _variant_row(v, samples)
        v.close()
    by_name.clear()
    del built
    gc.collect()
    result = {
        "id": group.id,
        "model": group.model,
        "phase": group.phase,
        "batch": group.batch,
        "length": group.length,
        "engine": group.engine,
        "prompt": DECODE_PROMPT if group.phase == "decode" else group.length,
        "unit": "s/token" if group.phase == "decode" else "s/forward",
        "rounds": group.length if group.phase == "decode" else group.rounds,
        "warmup": group.warmup,
        "clock": clock,
        "noise": _noise(samples),
        "noise_wall": _noise({k: v["wall"] for k, v in samples.items()}),
        "ratio": "median over rounds of variant_i / unsteered_i (paired per round)",
        "variants": out_variants,
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    log(f"group {group.id} done in {result['wall_s']} s (noise {result['noise']:.3f})")
    return result


# --- machine --------------------------------------------------------------------------
def machine_info(threads: int) -> dict:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": threads,
        "platform": platform.platform(),
    }
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except Exception:
        pass
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        keep = (
            "Architecture",
            "Model name",
            "CPU(s)",
            "Thread(s) per core",
            "Core(s) per socket",
            "Socket(s)",
            "L1d cache",
            "L2 cache",
            "L3 cache",
            "Hypervisor vendor",
        )
        info["lscpu"] = {
            k.strip(): v.strip()
            for k, _, v in (line.partition(":") for line in lscpu.splitlines())
            if k.strip() in keep
        }
        flags = [line for line in lscpu.splitlines() if line.startswith("Flags")]
        if flags:
            f = flags[0].split()
            info["lscpu"]["isa"] = " ".join(
                x for x in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if x in f
            )
    except Exception:
        pass
    try:
        with open("/proc/loadavg") as fh:
            info["loadavg_start"] = fh.read().split()[:3]
    except OSError:
        pass
    return info


def run_matrix(
    groups: list[Group],
    threads: int = 1,
    mode: str = "custom",
    profile: bool = True,
    profile_steps: int = 8,
    profile_rounds: int = 3,
    only: str | None = None,
    clock: str | None = None,
) -> dict:
    clock = clock or ("cpu" if threads == 1 else "wall")
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    results = {
        "mode": mode,
        "clock": clock,
        "machine": machine_info(threads),
        "models": {k: v for k, v in MODELS.items() if any(g.model == k for g in groups)},
        "fused": {"available": not fused_reason(), "reason": fused_reason()},
        "peers": {p: vars(peer_status(p)) for p in PEERS},
        "not_in_matrix": [list(x) for x in NOT_IN_MATRIX] if mode == "full" else [],
        "groups": [],
    }
    try:
        import steerfast

        results["bank"] = {"available": hasattr(steerfast, "SteeringBank")}
    except Exception:
        results["bank"] = {"available": False}
    for g in groups:
        if only and only not in g.id:
            continue
        try:
            results["groups"].append(run_group(g, threads, clock))
        except Exception as exc:  # one broken group must not lose the others
            log(f"group {g.id} FAILED: {type(exc).__name__}: {exc}")
            results["groups"].append(
                {
                    "id": g.id,
                    "model": g.model,
                    "phase": g.phase,
                    "batch": g.batch,
                    "length": g.length,
                    "engine": g.engine,
                    "error": f"{type(exc).__name__}: {exc}",
                    "variants": {},
                }
            )
    if profile:
        from .profile import breakdown

        try:
            results["breakdown"] = breakdown(get_model("default"), steps=profile_steps, rounds=profile_rounds)
        except Exception as exc:
            log(f"breakdown FAILED: {type(exc).__name__}: {exc}")
            results["breakdown"] = {"error": f"{type(exc).__name__}: {exc}"}
    try:
        with open("/proc/loadavg") as fh:
            results["machine"]["loadavg_end"] = fh.read().split()[:3]
    except OSError:
        pass
    results["wall_s"] = round(time.perf_counter() - t0, 1)
    return results


__all__ = ["run_matrix", "run_group", "get_model", "machine_info", "equivalence", "log"]
