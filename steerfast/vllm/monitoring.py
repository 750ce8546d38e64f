"""Monitor readings of vLLM requests, for the caller: offline (`readings(llm, outputs)`) and
for the OpenAI server's responses (serve_monitors.py).

The workers keep each asking request's readings under its request id (monitor_taps.py); the
frontend takes them with `collective_rpc("steerfast_readings")` once it holds the tokens they
belong to, and cuts them to those tokens.
"""

from __future__ import annotations

RPC = "steerfast_readings"


def shape(got: dict | None, n_tokens: int, start: int = 0) -> dict[str, list[float]]:
    """{name: [reading of token start .. n_tokens-1]} from a worker's {"names", "rows"}."""
    if not got:
        return {}
    rows = got["rows"][start:n_tokens]
    return {name: [r[j] for r in rows] for j, name in enumerate(got["names"])}


def readings(llm, outputs) -> list[dict[str, list[float]]]:
    """Each finished output's monitor readings, {name: one float per generated token} ({} for a
    request that asked for none). Call it once per output: the readings are then released."""
    keys = [o.request_id for o in outputs]
    per_rank = llm.collective_rpc(RPC, args=(keys, True))
    got = per_rank[0]  # every rank reads the same replicated stream; rank 0 answers
    return [shape(got.get(o.request_id), len(o.outputs[0].token_ids)) for o in outputs]
