"""The plugin's refusals without starting an engine: an unsupported vLLM fails loudly naming
its version and the missing name; steering asked of an engine without the plugin configured
is refused; bad configuration is refused; register() is idempotent."""

import pytest

import steerfast.vllm.internals as internals
from steerfast.errors import SteeringError
from steerfast.vllm.config import plugin_config


def test_register_is_idempotent_and_patches_once():
    from vllm.v1.engine.input_processor import InputProcessor
    from vllm.v1.worker.gpu_model_runner import GPUModelRunner

    from steerfast.vllm.plugin import register

    register()
    first = (InputProcessor.process_inputs, GPUModelRunner._prepare_inputs)
    register()
    assert (InputProcessor.process_inputs, GPUModelRunner._prepare_inputs) == first
    assert getattr(first[0], "_steerfast_patched", False)
    assert getattr(first[1], "_steerfast_patched", False)


def test_unsupported_version_fails_loudly(monkeypatch):
    import vllm

    monkeypatch.setattr(vllm, "__version__", "0.99.1")
    with pytest.raises(internals.UnsupportedVllm, match=r"0\.99\.1.*tested: 0\.32\.x"):
        internals.check_vllm()


def test_missing_internal_name_fails_loudly(monkeypatch):
    from vllm.v1.worker.gpu_model_runner import GPUModelRunner

    monkeypatch.delattr(GPUModelRunner, "_prepare_inputs")
    with pytest.raises(internals.UnsupportedVllm, match="GPUModelRunner._prepare_inputs"):
        internals.check_vllm()


def test_this_vllm_is_supported():
    internals.check_vllm()


def test_a_combination_needing_more_lanes_than_the_engine_has_is_refused(hf_dir, plan_files):
    """Each plan fits the engine's two lanes alone; prefix:2 + prompt_last + from_prompt_end
    together need three: refused in the frontend, before any worker sees the request."""
    from vllm.engine.arg_utils import EngineArgs

    from steerfast.vllm.frontend import engine_state

    cfg = {"steerfast": {"plans": plan_files}}
    config = EngineArgs(
        model=hf_dir, dtype="float32", enforce_eager=True, additional_config=cfg
    ).create_engine_config()
    state = engine_state(config)
    assert state.canonical([{"plan": "actadd"}, {"plan": "sadi_head"}]) is not None  # two lanes: fits
    with pytest.raises(SteeringError, match="needs 3 lanes"):
        state.canonical([{"plan": "actadd"}, {"plan": "sadi_head"}, {"plan": "caa"}])


def test_steering_without_the_plugin_configured_is_refused(hf_dir):
    from vllm.engine.arg_utils import EngineArgs
    from vllm.sampling_params import SamplingParams
    from vllm.v1.engine import EngineCoreRequest

    from steerfast.vllm.frontend import NotConfigured, steer_request

    config = EngineArgs(model=hf_dir, dtype="float32", enforce_eager=True).create_engine_config()
    req = EngineCoreRequest(
        request_id="r",
        prompt_token_ids=[1, 2, 3],
        mm_features=None,
        sampling_params=SamplingParams(max_tokens=2, extra_args={"steering": [{"plan": "caa"}]}),
        pooling_params=None,
        arrival_time=0.0,
        lora_request=None,
        cache_salt=None,
        data_parallel_rank=None,
    )
    with pytest.raises(NotConfigured, match="not configured"):
        steer_request(config, req)
    plain = EngineCoreRequest(
        request_id="p",
        prompt_token_ids=[1, 2, 3],
        mm_features=None,
        sampling_params=SamplingParams(max_tokens=2),
        pooling_params=None,
        arrival_time=0.0,
        lora_request=None,
        cache_salt=None,
        data_parallel_rank=None,
    )
    assert steer_request(config, plain) is plain and plain.cache_salt is None


@pytest.mark.parametrize(
    "raw, msg",
    [
        ([], "must be an object"),
        ({"plans": {"a": 3}}, "map plan names"),
        ({"sites": "most"}, "'sites'"),
        ({"sites": ["3:attn.middle"]}, "site '3:attn.middle'"),
        ({"lanes": 0}, "'lanes'"),
        ({"read_layers": [-1]}, "read_layers"),
        ({"colour": "blue"}, "unknown keys"),
    ],
)
def test_bad_configuration_is_refused(raw, msg):
    with pytest.raises(SteeringError, match=msg):
        plugin_config({"steerfast": raw})


def test_no_section_means_no_steering():
    assert plugin_config({}) is None and plugin_config(None) is None


def test_v2_model_runner_is_unreachable_on_cpu(hf_dir, monkeypatch):
    """The plugin steers through vLLM's V1 model runner, the one vLLM 0.32 picks on CPU; asked
    for V2 here, vLLM refuses to build the engine itself (V2 needs Triton's GPU backend), so a
    CPU engine can never run unsteered on V2. (On a GPU build the plugin's worker refuses V2
    with its own message: worker._refuse_v2.)"""
    from vllm import LLM

    monkeypatch.setenv("VLLM_USE_V2_MODEL_RUNNER", "1")
    with pytest.raises(Exception, match="Model Runner V2 requires Triton"):
        LLM(model=hf_dir, dtype="float32", enforce_eager=True, max_model_len=128,
            kv_cache_memory_bytes=1 << 26, additional_config={"steerfast": {"plans": {}}})  # fmt: skip


def test_every_plugin_module_imports():
    """The plugin's modules all import here (the main env's tests/packaging cannot: no vLLM)."""
    import importlib
    import pkgutil

    import steerfast.vllm

    names = [m.name for m in pkgutil.walk_packages(steerfast.vllm.__path__, "steerfast.vllm.")]
    assert "steerfast.vllm.monitor_taps" in names
    for name in names:
        importlib.import_module(name)
