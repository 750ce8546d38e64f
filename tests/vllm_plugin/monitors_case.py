"""Monitor readings in vLLM vs a hook oracle on the HF model: a forward pre-hook on the
decoder layer records the stream entering it at each forward's last position (the position
whose logits pick the next token), dotted with the unit vector by hand, plus the bias."""

from __future__ import annotations

import json
from contextlib import nullcontext

import torch
from oracle import combined

import steerfast
from steerfast.monitor import Monitor, load_monitors, save_monitors
from steerfast.serve.monitors import resolve_monitor_path

# (prompt, steering entries, monitors asked): steered and not, different monitors per row,
# layer 0 (after an embed.out edit), a request that asks none, names as a JSON string
JOBS = [
    ("The weather today is", None, ["sentiment"]),
    ("I think that my neighbour", [{"plan": "caa", "strength": 4.0}], ["sentiment", "probe0"]),
    ("Once upon a time, there was a", [{"plan": "embed", "positions": "all", "strength": 4.0}], ["probe0"]),
    ("The best thing about Mondays", [{"plan": "sadi_head"}], ["probe9", "sentiment"]),
    ("My favourite food is", None, None),
    ("Write one sentence about the sea:", [{"plan": "caa", "strength": -4.0}], json.dumps(["probe9"])),
]


def monitor_files(hf, directory) -> list[str]:
    model, _ = hf
    g = torch.Generator().manual_seed(7)
    d = model.config.hidden_size
    probes = [
        Monitor(0, torch.randn(d, generator=g), "probe0"),
        Monitor(9, torch.randn(d, generator=g), "probe9", 0.5),
    ]
    path = directory / "probes.safetensors"
    save_monitors(path, probes)
    return [resolve_monitor_path("sentiment"), str(path)]


def hf_readings(model, ids: list[int], plan, monitors: list, n: int):
    """(greedy tokens, {name: readings}) of the HF model under the hooks oracle."""
    seen: dict[int, list] = {}
    layers = model.model.layers

    def tap(layer):
        def pre(module, args, kwargs):
            h = args[0] if args else kwargs["hidden_states"]
            seen.setdefault(layer, []).append(h[0, -1].detach().double().clone())

        return pre

    handles = [layers[m.layer].register_forward_pre_hook(tap(m.layer), with_kwargs=True) for m in monitors]
    try:
        with torch.no_grad(), steerfast.apply_hooks(model, plan) if plan is not None else nullcontext():
            out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False)
    finally:
        for h in handles:
            h.remove()
    tokens = out[0, len(ids) :].tolist()
    got = {}
    for m in monitors:
        v = m.vector.double()
        got[m.name] = [float(h @ v) + m.bias for h in seen[m.layer][: len(tokens)]]
    return tokens, got


def run_monitored(llm, hf, plan_files, monitor_paths, n: int = 16):
    """[(label, vLLM tokens, HF tokens, vLLM readings, HF readings)] of JOBS in one generate."""
    from vllm import SamplingParams

    from steerfast.vllm.monitoring import readings

    model, tok = hf
    plans = {k: steerfast.SteeringPlan.load(p) for k, p in plan_files.items()}
    monitors = {m.name: m for path in monitor_paths for m in load_monitors(path)}
    ids = [tok(p)["input_ids"] for p, _, _ in JOBS]
    sps = []
    for _, entries, asked in JOBS:
        extra = {**({"steering": entries} if entries else {}), **({"monitors": asked} if asked else {})}
        sps.append(SamplingParams(max_tokens=n, temperature=0, extra_args=extra or None))
    outs = llm.generate([{"prompt_token_ids": i} for i in ids], sps, use_tqdm=False)
    got = readings(llm, outs)
    rows = []
    for (prompt, entries, asked), i, o, r in zip(JOBS, ids, outs, got):
        names = json.loads(asked) if isinstance(asked, str) else (asked or [])
        ref_tokens, ref = hf_readings(model, i, combined(plans, entries), [monitors[x] for x in names], n)
        rows.append(
            (f"{entries} {names} on {prompt[:24]!r}", list(o.outputs[0].token_ids), ref_tokens, r, ref)
        )
    return rows


def within_margin(a: float, b: float, tol: float = 1e-4) -> bool:
    """A reading `a` against its reference `b`: |a - b| <= tol, relative to |b| above 1."""
    return abs(a - b) <= tol * max(1.0, abs(b))


def reading_failures(rows, tol: float) -> tuple[float, list[str]]:
    """Largest |vLLM - HF| over the tokens both produced alike, and what breaks the rules."""
    worst, failures = 0.0, []
    for label, got_tokens, ref_tokens, got, ref in rows:
        if set(got) != set(ref):
            failures.append(f"{label}: monitors {sorted(got)} vs {sorted(ref)}")
            continue
        same = next((t for t, (a, b) in enumerate(zip(got_tokens, ref_tokens)) if a != b), len(got_tokens))
        for name, values in got.items():
            if len(values) != len(got_tokens):
                failures.append(f"{label}: {name} has {len(values)} readings for {len(got_tokens)} tokens")
            for a, b in zip(values[:same], ref[name][:same]):
                worst = max(worst, abs(a - b))
                if not within_margin(a, b, tol):
                    failures.append(f"{label}: {name} {a} vs {b}")
    return worst, failures


def check_monitor_readings(llm, hf, plan_files, monitor_paths) -> None:
    """run_monitored's rows: the same tokens as the oracle, every reading within 1e-4
    (relative above 1), a reading per token, and nothing kept by the worker afterwards."""
    rows = run_monitored(llm, hf, plan_files, monitor_paths)
    assert all(got_t == ref_t for _, got_t, ref_t, _, _ in rows), [r[0] for r in rows if r[1] != r[2]]
    _, failures = reading_failures(rows, 1e-4)
    assert not failures, "\n".join(failures[:10])
    assert sum(len(v) for *_, got, _ in rows for v in got.values()) > 100
    (stats,) = llm.collective_rpc("steerfast_stats")
    assert stats["readings_kept"] == 0, stats  # every reading was handed over
