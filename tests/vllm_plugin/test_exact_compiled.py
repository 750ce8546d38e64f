"""The same mixed batch under vLLM's default compiled mode: the plugin's hooks are installed
before the first compile and traced in. Both compiled forms of the edit: "op" (CPU's default:
an opaque op that branches on the host each step) and "data" (every lane traced in as tensor
data, the CUDA-graph-safe form GPU engines use)."""

import pytest
from cases import mixed_jobs, run_and_compare, start_engine


@pytest.fixture(scope="module", params=["auto", "data"])
def llm(request, hf_dir, plan_files):
    engine = start_engine(hf_dir, plan_files, steerfast={"compiled_edit": request.param})
    engine.steerfast_edit = "op" if request.param == "auto" else "data"  # auto on CPU: op
    yield engine
    engine.llm_engine.engine_core.shutdown()


def test_compiled_mode_is_on(llm):
    assert llm.llm_engine.vllm_config.compilation_config.mode != 0  # CompilationMode.NONE
    (stats,) = llm.collective_rpc("steerfast_stats")
    assert stats["compiled_edit"] == llm.steerfast_edit


def test_mixed_batch_equals_the_hook_oracle_compiled(llm, hf, plan_files):
    _, _, noise, failures = run_and_compare(llm, hf, plan_files, mixed_jobs())
    assert not failures, "\n".join(failures)
    assert noise < 1e-3, noise
