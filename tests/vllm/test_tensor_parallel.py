"""tensor_parallel_size=2 on this CPU (two workers, gloo/shared memory): every rank installs
the same hooks, attn.heads / mlp.neurons tables sliced to the rank's shard, residual sites
after the all-reduce; tokens equal the hooks oracle (which TP=1 equals, test_exact_eager)."""

import pytest
from cases import PROMPTS, run_and_compare


@pytest.fixture(scope="module")
def llm(hf_dir, plan_files):
    from vllm import LLM

    engine = LLM(
        model=hf_dir,
        dtype="float32",
        enforce_eager=True,
        tensor_parallel_size=2,
        max_model_len=256,
        max_num_seqs=16,
        kv_cache_memory_bytes=1 << 27,
        additional_config={"steerfast": {"plans": plan_files}},
    )
    yield engine
    engine.llm_engine.engine_core.shutdown()


def test_tp2_equals_the_oracle(llm, hf, plan_files):
    stats = llm.collective_rpc("steerfast_stats")
    assert len(stats) == 2 and all(s["active"] for s in stats)
    cases = [None, [{"plan": "sadi_head"}], [{"plan": "sadi_neuron"}], [{"plan": "caa", "strength": 4.0}],
             [{"plan": "laai"}], [{"plan": "ablate"}], [{"plan": "gate_mean"}]]  # fmt: skip
    jobs = [(p, c) for c in cases for p in PROMPTS[:3]]
    _, _, _, failures = run_and_compare(llm, hf, plan_files, jobs, n=16)
    assert not failures, "\n".join(failures)
