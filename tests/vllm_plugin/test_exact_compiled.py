"""The same mixed batch under vLLM's default compiled mode: the plugin's hooks are installed
before the first compile and traced in; every step's variation is tensor data."""

import pytest
from cases import mixed_jobs, run_and_compare, start_engine


@pytest.fixture(scope="module")
def llm(hf_dir, plan_files):
    engine = start_engine(hf_dir, plan_files)
    yield engine
    engine.llm_engine.engine_core.shutdown()


def test_compiled_mode_is_on(llm):
    assert llm.llm_engine.vllm_config.compilation_config.mode != 0  # CompilationMode.NONE


def test_mixed_batch_equals_the_hook_oracle_compiled(llm, hf, plan_files):
    _, _, noise, failures = run_and_compare(llm, hf, plan_files, mixed_jobs())
    assert not failures, "\n".join(failures)
    assert noise < 1e-3, noise
