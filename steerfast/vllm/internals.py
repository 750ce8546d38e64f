"""The vLLM names the plugin patches or reads, checked at registration: a different vLLM
fails loudly, naming its version and what is missing, instead of steering silently wrong."""

from __future__ import annotations

import importlib

TESTED_VLLM = ("0.32.",)  # release prefixes this plugin was checked against

# (module, attribute path) for every internal name touched (worker.py, frontend.py, rows.py,
# monitor_taps.py, serve_monitors.py)
REQUIRED = (
    ("vllm.v1.engine.input_processor", "InputProcessor.process_inputs"),
    ("vllm.v1.engine", "EngineCoreRequest"),
    ("vllm.v1.worker.gpu_model_runner", "GPUModelRunner._update_states"),
    ("vllm.v1.worker.gpu_model_runner", "GPUModelRunner._prepare_inputs"),
    ("vllm.v1.worker.gpu_model_runner", "GPUModelRunner.load_model"),
    ("vllm.v1.worker.cpu_model_runner", "CPUModelRunner.load_model"),
    ("vllm.v1.worker.gpu_worker", "Worker"),
    ("vllm.v1.worker.gpu_input_batch", "InputBatch.req_ids"),
    ("vllm.entrypoints.openai.completion.protocol", "CompletionRequest.to_sampling_params"),
    ("vllm.entrypoints.openai.chat_completion.protocol", "ChatCompletionRequest.to_sampling_params"),
    ("vllm.sampling_params", "SamplingParams.extra_args"),
    ("vllm.sampling_params", "RequestOutputKind.DELTA"),
    # serve_monitors.py: readings into the OpenAI server's responses
    ("vllm.v1.engine.async_llm", "AsyncLLM.generate"),
    ("vllm.v1.engine.async_llm", "AsyncLLM.collective_rpc"),
    (
        "vllm.entrypoints.openai.completion.serving",
        "OpenAIServingCompletion.request_output_to_completion_response",
    ),
    ("vllm.entrypoints.openai.completion.serving", "OpenAIServingCompletion.completion_stream_generator"),
    ("vllm.entrypoints.openai.chat_completion.serving", "OpenAIServingChat.chat_completion_full_generator"),
    ("vllm.entrypoints.openai.chat_completion.serving", "OpenAIServingChat.chat_completion_stream_generator"),
)
# attributes of live objects read per step (checked on the runner when the bank is built)
RUNNER_ATTRS = ("input_batch", "query_start_loc", "positions", "scheduler_config", "model_config")
BATCH_ATTRS = ("num_reqs", "num_prompt_tokens", "req_ids", "num_computed_tokens_cpu", "num_tokens_no_spec")


class UnsupportedVllm(RuntimeError):
    pass


def _version() -> str:
    import vllm

    return getattr(vllm, "__version__", "unknown")


def missing_names() -> list[str]:
    out = []
    for module, path in REQUIRED:
        try:
            obj = importlib.import_module(module)
        except ImportError:
            out.append(f"{module}")
            continue
        for part in path.split("."):
            if part == "extra_args" and hasattr(obj, "__struct_fields__"):
                ok = part in obj.__struct_fields__
            else:
                ok = hasattr(obj, part)
            if not ok:
                out.append(f"{module}.{path}")
                break
            obj = getattr(obj, part, None)
    return out


def check_vllm() -> None:
    version = _version()
    problems = []
    if not version.startswith(TESTED_VLLM):
        problems.append(f"version {version} (tested: {', '.join(p + 'x' for p in TESTED_VLLM)})")
    problems += [f"missing {name}" for name in missing_names()]
    if problems:
        raise UnsupportedVllm(
            f"steerfast's vLLM plugin does not support the installed vLLM {version}: "
            + "; ".join(problems)
            + ". Install a tested vLLM (steerfast[vllm]) or exclude the plugin with VLLM_PLUGINS."
        )


def check_runner(runner) -> None:
    missing = [a for a in RUNNER_ATTRS if not hasattr(runner, a)]
    batch = getattr(runner, "input_batch", None)
    missing += [f"input_batch.{a}" for a in BATCH_ATTRS if batch is not None and not hasattr(batch, a)]
    if missing:
        raise UnsupportedVllm(
            f"steerfast's vLLM plugin: vLLM {_version()}'s model runner {type(runner).__name__} "
            f"lacks {', '.join(missing)}"
        )
