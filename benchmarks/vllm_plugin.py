"""Throughput and TTFT of vLLM with the steerfast plugin, against vLLM without it, side by
side in one process (two engines on the same exported model), rounds interleaved.

    .venv-vllm/bin/python benchmarks/vllm_plugin.py [--rounds 3] [--requests 32] [--new 64]
        [--eager] [--forms data,op] [--cells caa-all,mon1,...] [--out FILE]

Cells (each a batch of `requests` prompts, greedy, exactly `new` tokens each, ignore_eos):
  plain            vLLM, no plugin (the baseline every ratio divides by)
  plain-twin       a second engine without the plugin: the A/A control (engine-instance bias)
  plugin-idle      the plugin engine, no request steered (its hooks present)
  caa-all          every request: CAA at mlp.out of every layer (one configuration)
  k1 / k8 / k32    K distinct configurations (CAA at every layer, strength per config)
  sadi-head-all    SADI-Head scales at attn.heads of every layer, prompt_last
  ablate-all       directional ablation at every residual site
  mon1 / mon8      no steering; every request asks for 1 / 8 monitors (read in the same pass;
                   on the first form's engine, which holds 8 monitors on 8 layers)
The plugin's cells run on one engine per compiled form of the edit (`compiled_edit`: "data",
the default, every lane traced in; "op", an opaque op branching on the host per step); the
second form's cells are named `cell@op`. With --eager the form does not matter.
Throughput = generated tokens / wall seconds of the generate call; TTFT from vLLM's own
request metrics (first_token_latency), median over requests. Ratios are per-round
then the median over rounds; the machine's load average is recorded with each round.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")

BASE = ("plain", "plain-twin")
STEERED = ("plugin-idle", "caa-all", "k1", "k8", "k32", "sadi-head-all", "ablate-all")


def build_plans(model, directory: Path) -> dict[str, str]:
    import torch

    from steerfast import Intervention, SteeringPlan
    from steerfast.plan import model_hint

    hint, d = model_hint(model), model.config.hidden_size
    layers = range(model.config.num_hidden_layers)
    g = torch.Generator().manual_seed(0)
    unit = lambda: (lambda v: v / v.norm())(torch.randn(d, generator=g))  # noqa: E731
    head = torch.zeros(d)
    head[64:128] = 1.0
    plans = {
        "caa_all": SteeringPlan(
            [Intervention(l, "mlp.out", "add", unit(), "from_prompt_end", 0.5) for l in layers], "caa", hint
        ),
        "sadi_all": SteeringPlan(
            [Intervention(l, "attn.heads", "scale", head, "prompt_last", 2.0) for l in layers], "sadi", hint
        ),
        "ablate_all": SteeringPlan.ablate_everywhere(model, unit()),
    }
    out = {}
    for name, plan in plans.items():
        out[name] = str(directory / f"{name}.safetensors")
        plan.save(out[name])
    return out


MONITOR_CELLS = ("mon1", "mon8")


def build_monitors(model, directory: Path) -> str:
    """8 monitors (random unit directions) on 8 layers, in one file."""
    import torch

    from steerfast.monitor import Monitor, save_monitors

    g = torch.Generator().manual_seed(1)
    d, n = model.config.hidden_size, model.config.num_hidden_layers
    monitors = [Monitor(k * n // 8, torch.randn(d, generator=g), f"m{k}") for k in range(8)]
    path = directory / "monitors.safetensors"
    save_monitors(path, monitors)
    return str(path)


def cell_extra(cell: str, n: int) -> list:
    """Each request's extra_args in `cell`."""
    if cell in MONITOR_CELLS:
        k = int(cell[3:])
        return [{"monitors": [f"m{j}" for j in range(k)]}] * n
    return [{"steering": s} if s else None for s in cell_requests(cell, n)]


def cell_requests(cell: str, n: int) -> list:
    if cell in ("plain", "plain-twin", "plugin-idle"):
        return [None] * n
    if cell == "caa-all":
        return [[{"plan": "caa_all"}]] * n
    if cell.startswith("k"):
        k = int(cell[1:])
        return [[{"plan": "caa_all", "strength": 0.25 + 0.01 * (i % k)}] for i in range(n)]
    if cell == "sadi-head-all":
        return [[{"plan": "sadi_all"}]] * n
    return [[{"plan": "ablate_all"}]] * n


def run_cell(llm, prompts, extras, new):
    from vllm import SamplingParams

    from steerfast.vllm.monitoring import readings

    sps = [SamplingParams(max_tokens=new, temperature=0, ignore_eos=True, extra_args=e) for e in extras]
    t0 = time.perf_counter()
    outs = llm.generate(prompts, sps, use_tqdm=False)
    if any(e and "monitors" in e for e in extras):  # the readings are part of the answer
        got = readings(llm, outs)
        assert all(len(v) == new for r in got for v in r.values()), "a reading per token"
    wall = time.perf_counter() - t0
    tokens = sum(len(o.outputs[0].token_ids) for o in outs)
    ttft = []
    for o in outs:
        m = getattr(o, "metrics", None)
        if getattr(m, "first_token_latency", 0.0):
            ttft.append(m.first_token_latency)
    return {"tok_s": tokens / wall, "wall_s": wall, "ttft_p50_s": statistics.median(ttft) if ttft else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--eager", action="store_true", help="enforce_eager (default: vLLM's compiled mode)")
    ap.add_argument("--forms", default="data,op", help="compiled forms of the edit, one engine each")
    ap.add_argument(
        "--cells",
        default="",
        help="comma-separated cells to run (default: all; plain, plain-twin and plugin-idle always run)",
    )
    ap.add_argument("--out", default="benchmarks/results/vllm-plugin.json")
    args = ap.parse_args()
    forms = args.forms.split(",")
    suffix = {f: "" if k == 0 else f"@{f}" for k, f in enumerate(forms)}
    cells = BASE + tuple(c + suffix[f] for f in forms for c in STEERED) + MONITOR_CELLS
    if args.cells:
        wanted = {"plugin-idle", *args.cells.split(",")}
        cells = tuple(c for c in cells if c in BASE or c.partition("@")[0] in wanted)

    from vllm import LLM

    from steerfast.models import load
    from steerfast.vllm.export import export_dir

    model, tok = load()
    work = Path(tempfile.mkdtemp(prefix="sf-vllm-bench-"))
    plans, monitors = build_plans(model, work), build_monitors(model, work)
    del model
    common = dict(
        model=str(export_dir()), dtype="float32", enforce_eager=args.eager, max_model_len=512,
        max_num_seqs=args.requests, kv_cache_memory_bytes=1 << 29, disable_log_stats=False,
    )  # fmt: skip
    t0 = time.time()
    engines = {"plain": LLM(**common), "plain-twin": LLM(**common)}
    for f in forms:
        steer = {"plans": plans, "compiled_edit": f}
        if f == forms[0]:  # the monitor cells' engine
            steer["monitors"] = [monitors]
        engines[f] = LLM(**common, additional_config={"steerfast": steer})
    start_s = time.time() - t0
    prompts = [
        f"Write a few sentences about topic number {i}: the sea, a city, music." for i in range(args.requests)
    ]
    for llm in engines.values():  # warm each
        run_cell(llm, prompts[:4], [None] * 4, 8)
    rounds = []
    for r in range(args.rounds):
        order = cells[r % len(cells) :] + cells[: r % len(cells)]
        row = {"load": os.getloadavg()[0]}
        for cell in order:
            name, _, form = cell.partition("@")
            llm = engines.get(cell) or engines[form or forms[0]]
            row[cell] = run_cell(llm, prompts, cell_extra(name, args.requests), args.new)
        rounds.append(row)
        print(f"round {r}: " + ", ".join(f"{c} {row[c]['tok_s']:.1f} tok/s" for c in cells), flush=True)
    ratios = {c: statistics.median(row[c]["tok_s"] / row["plain"]["tok_s"] for row in rounds) for c in cells}

    # the steering's own cost: steered cells against the same engine with no request steered
    def idle_of(cell: str) -> str:  # the plugin-idle cell of the cell's engine
        _, at, form = cell.partition("@")
        return "plugin-idle" + at + form

    vs_idle = {
        c: statistics.median(row[c]["tok_s"] / row[idle_of(c)]["tok_s"] for row in rounds)
        for c in cells
        if c not in BASE and not c.startswith("plugin-idle")
    }
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} cores, {os.uname().machine}",
        "mode": "eager" if args.eager else "compiled", "forms": forms,
        "requests": args.requests, "new_tokens": args.new,
        "engines_started": len(engines), "startup_s_all_engines": start_s,
        "throughput_ratio_to_plain": ratios, "throughput_ratio_to_plugin_idle": vs_idle, "rounds": rounds,
    }  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    for c in cells:
        ttft = statistics.median(row[c]["ttft_p50_s"] or 0.0 for row in rounds)
        idle = f"   x{vs_idle[c]:.3f} of plugin-idle" if c in vs_idle else ""
        print(f"{c:14s} x{ratios[c]:.3f} of plain throughput{idle}   TTFT p50 {ttft:.2f} s")
    for llm in engines.values():
        llm.llm_engine.engine_core.shutdown()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
