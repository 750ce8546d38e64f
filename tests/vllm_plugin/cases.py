"""One mixed batch for the exactness tests: every kind, site and position policy, a
combination, overrides and a conditional plan opening for some prompts and not others."""

from __future__ import annotations

import json
from pathlib import Path

from oracle import combined, compare, hf_greedy
from plans import conditional, save_all

import steerfast

PROMPTS = [
    "The weather today is",
    "I think that my neighbour",
    "Once upon a time, there was a",
    "The best thing about Mondays",
    "My favourite food is",
    "Write one sentence about the sea:",
]
# a prompt longer than a small scheduler step (chunked prefill) and than one KV block
LONG = (
    "Here is a long story about a small village by the sea, where the fishermen went out every "
    "morning before dawn and came back with their boats full of silver fish, and the children "
    "ran along the harbour wall to see who had caught the most. One day a stranger arrived"
)

_ORACLE: dict = {}

CASES = [
    None,
    [{"plan": "caa", "strength": 4.0}],
    [{"plan": "caa", "strength": -4.0}],
    [{"plan": "sadi_head"}],
    [{"plan": "sadi_neuron"}],
    [{"plan": "sadi_hidden"}],
    [{"plan": "laai"}],
    [{"plan": "ablate"}],
    [{"plan": "actadd"}],
    [{"plan": "embed", "positions": "from_prompt_end", "strength": 4.0}],
    [{"plan": "caa", "strength": 3.0}, {"plan": "laai"}],
    [{"plan": "actadd"}, {"plan": "sadi_head", "strength": 4.0}],
    [{"plan": "gate_mean"}],
    [{"plan": "gate_last"}],
]


def plan_files(hf, directory: Path) -> dict[str, str]:
    model, tok = hf
    paths = save_all(directory, model)
    for agg in ("mean", "last"):
        plan, _ = conditional(model, tok, PROMPTS, agg)
        path = directory / f"gate_{agg}.safetensors"
        plan.save(path)
        paths[f"gate_{agg}"] = str(path)
    return paths


def gate_opens(hf, plan_files, name: str) -> list[bool]:
    """Which PROMPTS open the gate of plan `name` (as the HF oracle decides it)."""
    from plans import stream_scores

    model, tok = hf
    gate = steerfast.SteeringPlan.load(plan_files[name]).condition
    (c,) = gate.conditions
    scores = stream_scores(model, tok, PROMPTS, c.layer, c.vector, c.aggregate)
    return [s > c.threshold for s in scores]


def run_and_compare(llm, hf, plan_files, jobs, n: int = 20):
    """jobs: [(prompt text, steering entries or None)]. Generates them in one LLM.generate
    call; returns (vLLM outputs, noise, failures) against the HF hooks oracle."""
    from vllm import SamplingParams

    model, tok = hf
    plans = {k: steerfast.SteeringPlan.load(p) for k, p in plan_files.items()}
    ids = [tok(p)["input_ids"] for p, _ in jobs]
    sps = [
        SamplingParams(max_tokens=n, temperature=0, logprobs=1, extra_args={"steering": e} if e else None)
        for _, e in jobs
    ]
    outs = llm.generate([{"prompt_token_ids": i} for i in ids], sps, use_tqdm=False)
    results = []
    for (prompt, entries), i, o in zip(jobs, ids, outs):
        got = list(o.outputs[0].token_ids)
        got_lp = [lp[t].logprob for t, lp in zip(got, o.outputs[0].logprobs)]
        key = (tuple(i), json.dumps(entries, sort_keys=True), n, tuple(sorted(plan_files.items())))
        if key not in _ORACLE:  # the same request's oracle is reused across engines (modes)
            _ORACLE[key] = hf_greedy(model, i, combined(plans, entries), n)
        ref, gaps, lps = _ORACLE[key]
        label = f"{[e['plan'] for e in entries] if entries else 'unsteered'} on {prompt[:30]!r}"
        results.append((label, got, got_lp, ref, gaps, lps))
    noise, failures = compare(results)
    return outs, results, noise, failures


def mixed_jobs() -> list[tuple[str, list | None]]:
    """>= 8 requests: every case on two prompts, the gates on every prompt."""
    jobs = [(p, None) for p in PROMPTS]
    for k, case in enumerate(CASES[1:], 1):
        names = [e["plan"] for e in case] if case else []
        prompts = PROMPTS if any(n.startswith("gate") for n in names) else PROMPTS[k % 3 :: 3][:2]
        jobs += [(p, case) for p in prompts]
    return jobs


def start_engine(hf_dir, plan_files, steerfast=None, **kw):
    """An LLM on the default model with every test plan loaded (kw: the test's engine shape;
    steerfast: more of the plugin's config)."""
    from vllm import LLM

    kw = {"max_model_len": 512, "max_num_seqs": 32, "kv_cache_memory_bytes": 1 << 28, **kw}
    section = {"plans": plan_files, **(steerfast or {})}
    return LLM(model=hf_dir, dtype="float32", additional_config={"steerfast": section}, **kw)
