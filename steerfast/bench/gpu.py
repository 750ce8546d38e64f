"""`python -m steerfast.bench.gpu`: the GPU run of issue 15 (docs/gpu_notes.md).

Sections, each with its own time budget, each recording its own failure instead of aborting:
1. kernels  pytest on tests/kernels (test_kern_cuda.py: the Triton kernels compiled for real,
            fp32 / fp16 / bf16, against the fp64 oracle);
2. ops      steer_rows_ (fused) vs the torch reference and the compile-time decomposition;
            steer_linear (fused) vs F.linear (cuBLAS) and the reference, M x D x dtype;
3. decode   end-to-end decode, random-init LLaMA-shaped ~1B and Gemma 3 270M (real weights if
            the package is installed, else random-init of the same shape), bf16: unsteered,
            hooks, patch and a bank with K distinct configurations, batch 1 / 8 / 64, eager
            and CUDA graphs (StaticCache + torch.compile(mode="reduce-overhead")).
Timing: torch.cuda.Event around every call, interleaved rounds (A B C, B C A, ...), medians.
Writes <out>/<name>.json and <name>.md. `--dry-run`: CPU, tiny sizes, the same code paths
minus CUDA (perf_counter instead of events, torch.compile with the eager backend instead of
CUDA graphs, one kernel test file) — what CI runs (tests/bench/test_gpu_dry_run.py).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from .gpu_cells import decode_cells, op_cells

GPU = dict(
    device="cuda",
    kernel_tests=["tests/kernels/test_kern_cuda.py", "tests/kernels/test_kern_triton.py"],
    ops=dict(M=(1, 8, 64), D=(2048, 4096, 11008), dtypes=("float32", "float16", "bfloat16"), reps=50),
    models=("llama-1b", "gemma3-270m"),
    batches=(1, 8, 64),
    engines=("eager", "cudagraphs"),
    steps=24,
    warmup=3,
    budgets=dict(kernels=120, ops=60, decode=270),  # seconds: <= 8 min with start-up
)
DRY = dict(
    device="cpu",
    kernel_tests=["tests/kernels/test_kern_cuda.py"],
    ops=dict(M=(1, 8), D=(64, 96), dtypes=("float32", "bfloat16"), reps=3),
    models=("llama-1b", "gemma3-270m"),
    batches=(2,),
    engines=("eager", "cudagraphs"),
    steps=2,
    warmup=1,
    budgets=dict(kernels=90, ops=60, decode=180),  # generous: the sizes keep it short
)


def timer(device: str) -> Callable[[Callable[[], object]], float]:
    """time_ms(fn): one call's milliseconds (CUDA events on GPU, perf_counter on CPU)."""
    if device == "cuda":

        def time_ms(fn):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            return a.elapsed_time(b)

        return time_ms

    def time_ms_cpu(fn):
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3

    return time_ms_cpu


def interleaved_ms(cases: dict, rounds: int, warmup: int, device: str) -> dict:
    """{name: {median_ms, p25_ms, p75_ms, n}}: every case once per round, rotating the order."""
    time_ms = timer(device)
    names = list(cases)
    for _ in range(warmup):
        for n in names:
            cases[n]()
    samples: dict = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names) if names else 0
        for n in names[k:] + names[:k]:
            samples[n].append(time_ms(cases[n]))
    out = {}
    for n, v in samples.items():
        v = sorted(v)
        out[n] = {
            "median_ms": statistics.median(v),
            "p25_ms": v[len(v) // 4],
            "p75_ms": v[(3 * len(v)) // 4],
            "n": len(v),
        }
    return out


def run_section(name: str, budget_s: float, fn: Callable[[float], dict]) -> dict:
    """fn(deadline) -> result dict; any exception is recorded, never raised."""
    t0 = time.perf_counter()
    rec: dict = {"budget_s": budget_s}
    try:
        rec["result"] = fn(t0 + budget_s)
        rec["status"] = rec["result"].pop("_status", "ok")
    except Exception as exc:
        rec["status"] = "failed"
        rec["error"] = f"{type(exc).__name__}: {exc}"
        rec["traceback"] = traceback.format_exc()[-3000:]
    rec["wall_s"] = round(time.perf_counter() - t0, 1)
    print(f"[gpu] {name}: {rec['status']} in {rec['wall_s']} s", file=sys.stderr, flush=True)
    return rec


def kernel_tests(cfg: dict) -> Callable[[float], dict]:
    def run(deadline: float) -> dict:
        timeout = max(5.0, deadline - time.perf_counter())
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *cfg["kernel_tests"]]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {
                "_status": "failed",
                "command": " ".join(cmd[1:]),
                "summary": f"timed out after {timeout:.0f} s",
            }
        lines = [ln for ln in p.stdout.strip().splitlines() if ln.strip()]
        summary = lines[-1] if lines else p.stderr.strip()[-300:]
        return {
            "_status": "ok" if p.returncode == 0 else "failed",
            "command": " ".join(cmd[1:]),
            "returncode": p.returncode,
            "summary": summary,
            "tail": "\n".join(lines[-30:]),
        }

    return run


def machine(device: str) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "device": device}
    for mod in ("transformers", "triton"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception as exc:
            info[mod] = f"unavailable ({type(exc).__name__})"
    if device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    from ..ops import library

    info["triton_kernels"] = library.triton_available() or library.triton_reason()
    return info


def markdown(res: dict) -> str:
    from .gpu_report import render

    return render(res)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m steerfast.bench.gpu", description=__doc__.split("\n")[0])
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes (what CI runs)")
    p.add_argument("--out", default="benchmarks/results", help="output directory")
    p.add_argument("--name", help="file stem (default gpu, or gpu-dry-run)")
    p.add_argument(
        "--only", choices=("kernels", "ops", "decode"), action="append", help="run only these sections"
    )
    args = p.parse_args(argv)
    cfg = DRY if args.dry_run else GPU
    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA device: run with --dry-run on CPU", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    res = {"mode": "dry-run" if args.dry_run else "gpu", "machine": machine(cfg["device"]), "sections": {}}
    sections = {
        "kernels": kernel_tests(cfg),
        "ops": lambda deadline: op_cells(cfg, deadline, interleaved_ms),
        "decode": lambda deadline: decode_cells(cfg, deadline, interleaved_ms),
    }
    for name, fn in sections.items():
        if args.only and name not in args.only:
            continue
        res["sections"][name] = run_section(name, cfg["budgets"][name], fn)
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = args.name or ("gpu-dry-run" if args.dry_run else "gpu")
    (out / f"{stem}.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    (out / f"{stem}.md").write_text(markdown(res))
    print(f"[gpu] wrote {out / stem}.json and .md in {res['wall_s']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
