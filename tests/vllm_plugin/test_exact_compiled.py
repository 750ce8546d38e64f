"""The same mixed batch under vLLM's default compiled mode: the plugin's hooks are installed
before the first compile and traced in. Both compiled forms of the edit: "op" (CPU's default:
an opaque op that branches on the host each step) and "data" (every lane traced in as tensor
data, the CUDA-graph-safe form GPU engines use)."""

import pytest
from cases import mixed_jobs, run_and_compare, start_engine


@pytest.fixture(scope="module", params=[None, "op"])
def llm(request, hf_dir, plan_files, monitor_paths):
    form = {"compiled_edit": request.param} if request.param else {}
    engine = start_engine(hf_dir, plan_files, steerfast={"monitors": monitor_paths, **form})
    engine.steerfast_edit = request.param or "data"
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


def test_monitor_readings_equal_the_hook_oracle(llm, hf, plan_files, monitor_paths):
    """Per request, per generated token, in the same forward as its steering: steered and
    not, different monitors per row, layer 0 after an embed.out edit, one row asking none."""
    from monitors_case import check_monitor_readings

    check_monitor_readings(llm, hf, plan_files, monitor_paths)
