"""tensor_parallel_size=2 on this CPU (two workers): every rank installs the same hooks, the
attn.heads / mlp.neurons tables sliced to the rank's shard, residual sites after the
all-reduce; tokens equal the hooks oracle on the HF model (as TP=1 does, test_architectures).
A Qwen2-shaped model (4 heads, 2 KV heads: the default model's 9 heads do not split in two)."""

import torch
from test_architectures import _check, _engine

import steerfast
from steerfast.testing import random_plan


def test_tp2_equals_the_oracle(tmp_path, monkeypatch):
    import os

    from steerfast.testing import tiny_model, tiny_tokenizer

    cores = sorted(os.sched_getaffinity(0))
    assert len(cores) >= 2, "TP=2 needs two cores"
    # vLLM binds each CPU worker's threads by NUMA node; one node here: bind one core each
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", f"{cores[0]}|{cores[1]}")

    model = tiny_model("qwen2", seed=7, hidden_size=256, intermediate_size=512, num_attention_heads=4,
                       num_key_value_heads=2, num_hidden_layers=4, max_position_embeddings=256)  # fmt: skip
    tok = tiny_tokenizer()
    model.save_pretrained(tmp_path / "qwen2")
    tok.save_pretrained(tmp_path / "qwen2")
    u = torch.randn(256, generator=torch.Generator().manual_seed(8))
    plans = {
        "every_site": random_plan(model, seed=9),
        "ablate": steerfast.SteeringPlan.ablate_everywhere(model, u),
    }
    llm = _engine(tmp_path / "qwen2", plans, tmp_path, tensor_parallel_size=2)
    try:
        stats = llm.collective_rpc("steerfast_stats")
        assert len(stats) == 2 and all(s["active"] for s in stats), stats
        prompts = [tok(p)["input_ids"] for p in ("hello there, steering", "abc def ghi jkl")]
        _check(llm, model, prompts, plans)
    finally:
        llm.llm_engine.engine_core.shutdown()
