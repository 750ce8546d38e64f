"""tensor_parallel_size=2 on this CPU (two workers): every rank installs the same hooks, the
attn.heads / mlp.neurons tables sliced to the rank's shard, residual sites after the
all-reduce; tokens equal the hooks oracle on the HF model (as TP=1 does, test_vllm_architectures),
and monitor readings (rank 0's; the stream they read is replicated) equal the hook oracle's.
A Qwen2-shaped model (4 heads, 2 KV heads: the default model's 9 heads do not split in two)."""

import torch
from monitors_case import hf_readings, within_margin
from test_vllm_architectures import _check, _engine, small_prompts, tiny_qwen2

from steerfast.monitor import Monitor, save_monitors


def _check_monitors(llm, model, prompts_ids, plans, monitors, n=12):
    from vllm import SamplingParams

    from steerfast.vllm.monitoring import readings

    names = [m.name for m in monitors]
    extra = {"steering": [{"plan": "every_site"}], "monitors": names}
    sps = [SamplingParams(max_tokens=n, temperature=0, extra_args=extra) for _ in prompts_ids]
    outs = llm.generate([{"prompt_token_ids": ids} for ids in prompts_ids], sps, use_tqdm=False)
    for ids, o, got in zip(prompts_ids, outs, readings(llm, outs)):
        ref_tokens, ref = hf_readings(model, ids, plans["every_site"], monitors, n)
        assert list(o.outputs[0].token_ids) == ref_tokens
        for name in names:
            assert len(got[name]) == len(ref_tokens)
            for a, b in zip(got[name], ref[name]):
                assert within_margin(a, b), (name, a, b)


def test_tp2_equals_the_oracle(tmp_path, monkeypatch):
    import os

    cores = sorted(os.sched_getaffinity(0))
    assert len(cores) >= 2, "TP=2 needs two cores"
    # vLLM binds each CPU worker's threads by NUMA node; one node here: bind one core each
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", f"{cores[0]}|{cores[1]}")
    model, tok, plans, model_dir = tiny_qwen2(tmp_path, seed=7)
    g = torch.Generator().manual_seed(11)
    monitors = [Monitor(layer, torch.randn(256, generator=g), f"probe{layer}", 0.25) for layer in (0, 2)]
    save_monitors(tmp_path / "probes.safetensors", monitors)
    cfg = {"monitors": [str(tmp_path / "probes.safetensors")]}
    llm = _engine(model_dir, plans, tmp_path, steerfast=cfg, tensor_parallel_size=2)
    try:
        stats = llm.collective_rpc("steerfast_stats")
        assert len(stats) == 2 and all(s["active"] for s in stats), stats
        _check(llm, model, small_prompts(tok), plans)
        _check_monitors(llm, model, small_prompts(tok), plans, monitors)
    finally:
        llm.llm_engine.engine_core.shutdown()
