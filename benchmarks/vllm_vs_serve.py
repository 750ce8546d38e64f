"""The same HTTP workload on `steerfast serve` (transformers engine) and on
`steerfast serve --engine vllm` (vLLM + the plugin): 32 concurrent streamed chat completions,
greedy, `new` tokens each: unsteered, with one CAA configuration, and with that CAA and the
shipped sentiment monitor read per token (each chunk carries its tokens' readings);
interleaved rounds, one server up at a time, the official openai client.

    python -m benchmarks.vllm_vs_serve --serve-python .venv/bin/python \\
        --vllm-python .venv-vllm/bin/python [--rounds 2] [--new 64] [--out benchmarks/results/vllm-vs-serve.json]

`--engines vllm` runs the vLLM server alone (the cost of streamed monitor readings there). Run
it from the repo root: the servers are started by the tests' launcher, tests.serve_proc.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from tests.serve_proc import RunningServer

KEY = "sk-bench"


def start(python: str, engine: str, plan: str, log: Path) -> RunningServer:
    """The server of `engine` on `python`'s steerfast, by the tests' own launcher."""
    flags = ["--api-key", KEY, "--plan", f"caa={plan}", "--monitor", "sentiment"]
    if engine == "vllm":
        flags += ["--engine", "vllm", "--vllm-max-num-seqs", "32"]
    else:
        flags += ["--slots", "8", "--threads", "1", "--served-model-name", "steerfast"]
    cmd = [python, "-m", "steerfast", "serve", "--port", "{port}"]
    return RunningServer(flags, log, env={"VLLM_HOST_IP": "127.0.0.1"}, timeout=900, cmd=cmd, poll=2)


CELLS = {
    "unsteered": {},
    "caa": {"steering": [{"plan": "caa", "strength": 2.0}]},
    "caa+monitor": {"steering": [{"plan": "caa", "strength": 2.0}], "monitors": ["sentiment"]},
}


async def workload(url: str, prompts, extra: dict, new: int) -> dict:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url + "/v1", api_key=KEY, timeout=1800)

    async def one(p):
        """(seconds to the first content, completion tokens, chunks, monitor readings)."""
        t0 = time.perf_counter()
        first, tokens, chunks, readings = None, None, 0, 0
        stream = await client.chat.completions.create(
            model="steerfast",
            messages=[{"role": "user", "content": p}],
            max_tokens=new,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},  # a chunk may carry several tokens: count them
            extra_body=extra,
        )
        async for chunk in stream:
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
            if not chunk.choices:
                continue
            if chunk.choices[0].delta.content:
                first = first or time.perf_counter() - t0
                chunks += 1
            monitors = (chunk.choices[0].model_extra or {}).get("monitors") or {}
            readings += len(monitors.get("sentiment", []))
        if tokens is None:
            raise RuntimeError("the stream ended without its usage chunk")
        if extra.get("monitors") and readings != tokens:
            raise RuntimeError(f"{readings} monitor readings streamed for {tokens} tokens")
        return first, tokens, chunks, readings

    t0 = time.perf_counter()
    async with client:  # closed inside this event loop (asyncio.run closes it after)
        res = await asyncio.gather(*(one(p) for p in prompts))
    wall = time.perf_counter() - t0
    ttft = [r[0] for r in res if r[0] is not None]
    return {
        "wall_s": wall,
        "tokens": sum(r[1] for r in res),
        "chunks": sum(r[2] for r in res),
        "readings": sum(r[3] for r in res),
        "ttft_p50_s": statistics.median(ttft) if ttft else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve-python", required=True)
    ap.add_argument("--vllm-python", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--engines", default="transformers,vllm")
    ap.add_argument("--out", default="benchmarks/results/vllm-vs-serve.json")
    args = ap.parse_args()
    engines = args.engines.split(",")
    from importlib.resources import files

    plan = str(files("steerfast.data") / "tuned" / "smollm2_caa_sentiment.safetensors")
    prompts = [
        f"Write a few sentences about topic number {i}: the sea, a city, music." for i in range(args.requests)
    ]
    tmp = Path(tempfile.mkdtemp(prefix="sf-vs-"))
    rounds = []
    for r in range(args.rounds):
        row = {"load": os.getloadavg()[0]}
        for engine in engines[::-1] if r % 2 else engines:
            python = args.vllm_python if engine == "vllm" else args.serve_python
            t0 = time.time()
            server = start(python, engine, plan, tmp / f"{engine}.log")
            start_s, url = time.time() - t0, server.base
            try:
                asyncio.run(workload(url, prompts[:4], {}, 4))  # warm
                row[engine] = {"start_s": start_s}
                for cell, extra in CELLS.items():
                    row[engine][cell] = asyncio.run(workload(url, prompts, extra, args.new))
            finally:
                server.stop()
        rounds.append(row)
        print(json.dumps(row), flush=True)

    def tok_s(cell: dict) -> float:
        return cell["tokens"] / cell["wall_s"]

    summary = {}
    for engine in engines:
        for cell in CELLS:
            summary[f"{engine}/{cell}/tok_s"] = statistics.median(tok_s(row[engine][cell]) for row in rounds)
            summary[f"{engine}/{cell}/ttft_p50_s"] = statistics.median(
                row[engine][cell]["ttft_p50_s"] for row in rounds
            )
        summary[f"{engine}/caa+monitor/tok_s_ratio_to_caa"] = statistics.median(
            tok_s(row[engine]["caa+monitor"]) / tok_s(row[engine]["caa"]) for row in rounds
        )
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} cores",
        "requests": args.requests, "new_tokens": args.new, "summary": summary, "rounds": rounds,
    }  # fmt: skip
    Path(args.out).write_text(json.dumps(result, indent=1))
    for k, v in summary.items():
        print(f"{k:32s} {v}")


if __name__ == "__main__":
    main()
