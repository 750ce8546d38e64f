"""Soak test of `steerfast serve`: a real server process under mixed traffic for minutes.

    python -m benchmarks.soak_serve [--minutes 5] [--requests 1000] [--workers 8] [--out FILE]

(from the repo root: the server launcher is the tests' own, imported as the package
tests.serve_proc, never by editing sys.path).

Traffic, drawn per request from a seeded generator: 12 prompts x 4 steering configurations
(none, two uploaded plans, one at another strength), greedy or sampled (temperature 0.8 with
a seed), streamed or not, and ~1 in 8 requests disconnected on purpose (the client's task is
cancelled after a random short delay); every 50th request uploads a scratch plan and deletes
it again. Before the soak, each (prompt, configuration) pair is run alone, greedily: every
greedy response of the soak must equal its solo run (no cross-talk between the requests packed
into one step). The server's RSS is sampled every 5 s; after the soak the server must report
no active request, no busy slot and no queued request, and every per-request registry of its engine
(`/v1/steering/stats` "registrations", serve/request_context.py) must be empty: the reading
is recorded as "registrations" in the summary, and each registry still holding an entry is
named on stderr, with exit status 1. Writes a JSON summary (default
benchmarks/results/soak.json) and prints it.

The model is the tiny random-init llama of the server tests (a server that answers in
milliseconds, so thousands of requests fit in minutes on 2 CPU cores); `--model` serves
another one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.serve_proc import OCTET, Server, plan_file, tiny_model_dir

PROMPTS = [f"prompt {i}: " + "abcdefghij"[: 3 + i % 7] for i in range(12)]
CONFIGS = [
    None,
    [{"plan": "p1"}],
    [{"plan": "p2"}],
    [{"plan": "p1", "strength": -0.5}],
]
NEW = 8
SETTLE_S = 15.0  # a cancelled request leaves the engine's tables at its next step: wait that long at most


def _body(prompt, steering, greedy, seed, stream):
    body = {"model": "m", "prompt": prompt, "max_tokens": NEW, "stream": stream}
    body.update({"temperature": 0} if greedy else {"temperature": 0.8, "seed": seed})
    if steering:
        body["steering"] = steering
    return body


async def _complete(client, body) -> str:
    if not body["stream"]:
        r = await client.post("/v1/completions", json=body)
        r.raise_for_status()
        return r.json()["choices"][0]["text"]
    text = ""
    async with client.stream("POST", "/v1/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if "error" in event:
                raise RuntimeError(f"stream error event: {event['error']}")
            text += event["choices"][0].get("text", "")
    return text


async def _settled_stats(client, timeout: float = SETTLE_S) -> dict:
    """`/v1/steering/stats` once every per-request registry is empty, or as it is after
    `timeout` s (the server frees a cancelled request at its engine's next step)."""
    deadline = time.monotonic() + timeout
    while True:
        r = await client.get("/v1/steering/stats")
        r.raise_for_status()
        stats = r.json()
        if not any(stats["registrations"].values()) or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(0.05)


def failures(res: dict) -> list[str]:
    """Why the soak failed, one line per reason; empty when it passed."""
    out = [f"{res['errors']} unprovoked error(s), e.g. {res['error_samples'][:3]}"] if res["errors"] else []
    out += [f"{k} is {v} after the soak, not 0" for k, v in res["after"].items() if v]
    out += [
        f"per-request registry {name!r} still holds {n} entr{'y' if n == 1 else 'ies'} after the soak"
        for name, n in res["registrations"].items()
        if n
    ]
    return out


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def soak(base: str, pid: int, plan_bytes: bytes, minutes: float, requests: int, workers: int) -> dict:
    limits = httpx.Limits(max_connections=workers + 4)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        solo = {}
        for p in PROMPTS:
            for c, steering in enumerate(CONFIGS):
                solo[(p, c)] = await _complete(client, _body(p, steering, True, 0, False))
        distinct = len({(p, v) for (p, _), v in solo.items()})
        stats = {"requests": 0, "greedy_checked": 0, "cross_talk": 0, "errors": [], "disconnects": 0}
        stats.update({"streamed": 0, "sampled": 0, "uploads": 0})
        rss: list[tuple[float, int]] = []
        t0 = time.monotonic()
        deadline = t0 + 60 * minutes
        counter = iter(range(10**9))

        async def one(i: int, rng: random.Random) -> None:
            p, c = rng.choice(PROMPTS), rng.randrange(len(CONFIGS))
            greedy, stream = rng.random() < 0.6, rng.random() < 0.5
            body = _body(p, CONFIGS[c], greedy, rng.randrange(1 << 30), stream)
            stats["streamed"] += stream
            stats["sampled"] += not greedy
            if rng.random() < 1 / 8:  # provoked: the client goes away mid-request
                task = asyncio.ensure_future(_complete(client, body))
                await asyncio.sleep(rng.uniform(0.0, 0.05))
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                    await task
                stats["disconnects"] += 1
                return
            try:
                text = await _complete(client, body)
            except Exception as exc:  # anything here was not provoked
                stats["errors"].append(f"request {i}: {type(exc).__name__}: {exc}"[:300])
                return
            if greedy:
                stats["greedy_checked"] += 1
                if text != solo[(p, c)]:
                    stats["cross_talk"] += 1
                    stats["errors"].append(f"request {i}: greedy {text!r} != solo {solo[(p, c)]!r}")

        async def upload_cycle(i: int) -> None:
            name = f"scratch{i}"
            r = await client.post(f"/v1/steering/plans?name={name}", content=plan_bytes, headers=OCTET)
            if r.status_code != 201:
                stats["errors"].append(f"upload {name}: {r.status_code} {r.text[:200]}")
                return
            r = await client.delete(f"/v1/steering/plans/{name}")
            if r.status_code != 200:
                stats["errors"].append(f"delete {name}: {r.status_code} {r.text[:200]}")
            stats["uploads"] += 1

        async def worker(w: int) -> None:
            rng = random.Random(1000 + w)
            while time.monotonic() < deadline or stats["requests"] < requests:
                i = next(counter)
                stats["requests"] += 1
                await (upload_cycle(i) if i % 50 == 49 else one(i, rng))

        async def sample_rss() -> None:
            while True:
                rss.append((round(time.monotonic() - t0, 1), _rss_kib(pid)))
                await asyncio.sleep(5)

        sampler = asyncio.ensure_future(sample_rss())
        await asyncio.gather(*(worker(w) for w in range(workers)))
        sampler.cancel()
        elapsed = time.monotonic() - t0
        after = await _settled_stats(client)  # the cancellations of the last disconnects land
    warm = [kib for t, kib in rss if t >= 60] or [kib for _, kib in rss]
    return {
        **{k: v for k, v in stats.items() if k != "errors"},
        "errors": len(stats["errors"]),
        "error_samples": stats["errors"][:10],
        "distinct_solo_outputs": distinct,
        "elapsed_s": round(elapsed, 1),
        "requests_per_s": round(stats["requests"] / elapsed, 2),
        "rss_mib_after_warmup_first_last_max": [round(x / 1024, 1) for x in (warm[0], warm[-1], max(warm))],
        "rss_samples": len(rss),
        "after": {k: after.get(k) for k in ("requests_active", "slots_busy", "queue_depth")},
        "registrations": after["registrations"],
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--requests", type=int, default=1000, help="at least this many, however long it takes")
    p.add_argument("--workers", type=int, default=8, help="concurrent clients")
    p.add_argument("--model", help="serve this model instead of the tiny llama")
    p.add_argument("--out", default="benchmarks/results/soak.json")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        model = Path(args.model) if args.model else tiny_model_dir(d)
        plan_dir = d / "plans"
        plan_dir.mkdir()
        server = Server(
            model, d / "server.log", "--allow-plan-uploads", "--plan-dir", str(plan_dir), "--slots", "8"
        )
        try:
            server.wait_ready()
            for name, seed in (("p1", 11), ("p2", 12)):
                path = plan_file(d, name, seed)
                r = httpx.post(
                    f"{server.base}/v1/steering/plans?name={name}", content=path.read_bytes(), headers=OCTET
                )
                assert r.status_code == 201, r.text
            scratch = plan_file(d, "scratch", 13).read_bytes()
            res = asyncio.run(
                soak(server.base, server.proc.pid, scratch, args.minutes, args.requests, args.workers)
            )
        finally:
            server.stop()
    res["command"] = "python -m benchmarks.soak_serve " + " ".join(sys.argv[1:])
    res["date"] = time.strftime("%Y-%m-%d %H:%M %Z")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))
    failed = failures(res)
    for reason in failed:
        print(f"SOAK FAILED: {reason}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
