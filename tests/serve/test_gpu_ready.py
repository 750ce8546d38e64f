"""GPU-ready serving, checked on CPU: `--device` / `--dtype` / `--no-prefix-cache` parse and
refuse bad values in one line (exit 2, before any model loads), the model serves in float32
and bfloat16, CUDA graphs and async batching are off in the resolved continuous-batching
config, and bank loads run on the stream the manager computes on (none on CPU; a CPU stream
object stands in for the CUDA one to show the load is entered on it).
"""

import asyncio

import httpx
import pytest
import torch
from serve_proc import tiny_model_dir, tiny_server

from steerfast.cli import build_parser, main
from steerfast.errors import SteeringError
from steerfast.serve.device import compute_stream, on_compute_stream, parse_device, parse_dtype
from steerfast.serve.engine import Engine, SteerEntry
from steerfast.testing import random_plan, tiny_model, tiny_tokenizer


def test_flags_parse_and_are_listed():
    args = build_parser().parse_args(["serve", "--device", "cuda:1", "--dtype", "bf16", "--no-prefix-cache"])
    assert (args.device, args.dtype, args.no_prefix_cache) == ("cuda:1", "bf16", True)
    args = build_parser().parse_args(["serve"])
    assert (args.device, args.dtype, args.no_prefix_cache) == ("cpu", "float32", False)
    sub = build_parser()._subparsers._group_actions[0].choices["serve"]
    help_text = sub.format_help()
    for flag in ("--device", "--dtype", "--no-prefix-cache"):
        assert flag in help_text


@pytest.mark.parametrize(
    "argv, named",
    [
        (["--device", "tpu"], "--device"),
        (["--device", "not a device"], "--device"),
        (["--device", "cuda:99"], "--device"),  # no CUDA here; 99 devices nowhere
        (["--dtype", "int8"], "--dtype"),
        (["--dtype", "float64"], "--dtype"),
    ],
)
def test_bad_device_or_dtype_exits_2_in_one_line(capsys, argv, named):
    rc = main(["serve", "--port", "1", *argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("steerfast serve: error: ") and named in err, err


def test_parsers():
    assert parse_dtype("bf16") is torch.bfloat16 and parse_dtype("bfloat16") is torch.bfloat16
    assert parse_dtype("fp16") is torch.float16 and parse_dtype("FLOAT32") is torch.float32
    assert parse_device("cpu") == torch.device("cpu")
    with pytest.raises(SteeringError, match="float32, bfloat16 or float16|float32, bfloat16, float16"):
        parse_dtype("int8")
    if not torch.cuda.is_available():
        with pytest.raises(SteeringError, match="CUDA is not available"):
            parse_device("cuda")


@pytest.fixture(scope="module")
def engine():
    model = tiny_model("llama", seed=3)
    model.generation_config.eos_token_id = None
    eng = Engine(model, tiny_tokenizer(), slots=2, max_prompt_tokens=64, max_new_tokens=8, kv_tokens=2048)
    eng.add_plan("p", random_plan(tiny_model("llama", seed=3), seed=8))
    yield eng
    eng.close()


def test_cuda_graphs_and_async_batching_off(engine):
    cfg = engine.manager.continuous_batching_config
    assert tuple(cfg.use_cuda_graph) == (False, False)
    assert cfg.use_async_batching is False
    assert engine.manager.batch_processor.model_runner.pad_inputs is False  # nothing captured


def test_loads_run_on_the_managers_compute_stream(engine):
    io = engine.manager.batch_processor.inputs_and_outputs
    assert compute_stream(engine.manager) is io.compute_stream  # None: CPU has no compute stream
    seen = []
    load = engine.bank.load

    def spy(slot, plan):
        seen.append(torch.cpu.current_stream())
        return load(slot, plan)

    stream = torch.cpu.Stream()  # what create_device_stream gives on CUDA, on CPU
    engine.bank.load, io.compute_stream = spy, stream
    try:
        assert compute_stream(engine.manager) is stream
        with on_compute_stream(engine.manager) as s:
            assert s is stream and torch.cpu.current_stream() is stream
        key, plan = engine.resolve([SteerEntry("p", strength=1.5)])
        slot = engine.acquire(key, plan)
        engine.release(slot)
    finally:
        engine.bank.load, io.compute_stream = load, None
    assert seen == [stream]
    assert torch.cpu.current_stream() is not stream


def _tokens(out) -> list[int]:
    """Engine output tokens (`Generated.token_ids`; transformers' `generated_tokens` before)."""
    ids = getattr(out, "token_ids", None)
    return list(ids if ids is not None else out.generated_tokens)


def _greedy(engine, ids, entries, n):
    async def go():
        out = None
        async for out in engine.generate(ids, entries, n):
            pass
        return _tokens(out)

    return asyncio.run(go())


@pytest.mark.slow
def test_bf16_greedy_on_the_default_model_is_sane():
    """bfloat16 greedy on SmolLM2: the answer a float32 engine gives (same first tokens, the
    fact right), and steering still moves it."""
    from steerfast.models import load

    prompt = "The capital of France is"
    outs = {}
    for dtype in (torch.float32, torch.bfloat16):
        model, tok = load(dtype=dtype)
        assert next(model.parameters()).dtype == dtype
        eng = Engine(model, tok, slots=1, max_prompt_tokens=64, max_new_tokens=8, kv_tokens=2048)
        try:
            ids = tok(prompt)["input_ids"]
            outs[dtype] = _greedy(eng, ids, [], 6)
            if dtype == torch.bfloat16:
                eng.add_plan("p", random_plan(model, seed=1))
                steered = _greedy(eng, ids, [SteerEntry("p", strength=8.0)], 6)
        finally:
            eng.close()
    text = tok.decode(outs[torch.bfloat16])
    assert "Paris" in text, text
    assert outs[torch.bfloat16][:3] == outs[torch.float32][:3]
    assert steered != outs[torch.bfloat16]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_real_server_serves_in_dtype(tmp_path, dtype):
    """A real `steerfast serve --dtype ...` process (tiny llama) answers a greedy completion."""
    import openai

    s = tiny_server(tiny_model_dir(tmp_path), tmp_path / "server.log", "--dtype", dtype, "--device", "cpu")
    try:
        client = openai.OpenAI(base_url=s.base + "/v1", api_key="none")
        model = httpx.get(s.base + "/v1/models").json()["data"][0]["id"]
        r = client.completions.create(model=model, prompt="hello there", max_tokens=5, temperature=0)
        assert r.usage.completion_tokens == 5 and r.choices[0].finish_reason == "length"
        r2 = client.completions.create(model=model, prompt="hello there", max_tokens=5, temperature=0)
        assert r2.choices[0].text == r.choices[0].text
    finally:
        assert s.stop() == 0
