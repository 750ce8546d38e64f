"""tensor_parallel_size=2 on this CPU (two workers): every rank installs the same hooks, the
attn.heads / mlp.neurons tables sliced to the rank's shard, residual sites after the
all-reduce; tokens equal the hooks oracle on the HF model (as TP=1 does, test_vllm_architectures).
A Qwen2-shaped model (4 heads, 2 KV heads: the default model's 9 heads do not split in two)."""

from test_vllm_architectures import _check, _engine, small_prompts, tiny_qwen2


def test_tp2_equals_the_oracle(tmp_path, monkeypatch):
    import os

    cores = sorted(os.sched_getaffinity(0))
    assert len(cores) >= 2, "TP=2 needs two cores"
    # vLLM binds each CPU worker's threads by NUMA node; one node here: bind one core each
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", f"{cores[0]}|{cores[1]}")
    model, tok, plans, model_dir = tiny_qwen2(tmp_path, seed=7)
    llm = _engine(model_dir, plans, tmp_path, tensor_parallel_size=2)
    try:
        stats = llm.collective_rpc("steerfast_stats")
        assert len(stats) == 2 and all(s["active"] for s in stats), stats
        _check(llm, model, small_prompts(tok), plans)
    finally:
        llm.llm_engine.engine_core.shutdown()
