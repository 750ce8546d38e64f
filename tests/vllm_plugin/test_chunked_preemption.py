"""Positions measured from each request's true prompt length when its prompt is split over
scheduler steps (chunked prefill) and when it is preempted and recomputed (a KV cache that
cannot hold the batch): the same tokens as the oracle, and the recompute really happened."""

import pytest
from cases import LONG, mixed_jobs, run_and_compare, start_engine

STEP_TOKENS = 32  # < the long prompt's length: its prefill spans several steps


@pytest.fixture(scope="module")
def llm(hf_dir, plan_files):
    engine = start_engine(
        hf_dir,
        plan_files,
        enforce_eager=True,
        max_model_len=192,
        max_num_seqs=16,
        max_num_batched_tokens=STEP_TOKENS,
        enable_chunked_prefill=True,
        block_size=32,
        kv_cache_memory_bytes=16 << 20,  # ~350 tokens (11 blocks) of KV for a batch needing far more
    )
    yield engine
    engine.llm_engine.engine_core.shutdown()


def test_chunked_prefill_and_preemption_keep_positions(llm, hf, plan_files):
    model, tok = hf
    assert len(tok(LONG)["input_ids"]) > STEP_TOKENS
    jobs = [(LONG, case) for _, case in mixed_jobs()[::2]] + mixed_jobs()[1::2]
    before = llm.collective_rpc("steerfast_stats")[0]["recomputed"]
    _, _, _, failures = run_and_compare(llm, hf, plan_files, jobs, n=24)
    assert not failures, "\n".join(failures)
    after = llm.collective_rpc("steerfast_stats")[0]["recomputed"]
    assert after > before, "no steered request was preempted and recomputed: make the KV cache smaller"
