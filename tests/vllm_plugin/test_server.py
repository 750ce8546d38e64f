"""`steerfast serve --engine vllm` as users run it, with the official openai client: the
`steering` field (and its vllm_xargs form) honoured exactly, an unknown plan a 400, plan
upload with the admin key only, and an uploaded plan that survives kill -9 + restart."""

import json

import httpx
import pytest
from cases import PROMPTS
from monitors_case import hf_readings, within_margin
from oracle import hf_greedy
from serve_proc import RunningServer

import steerfast

API, ADMIN = "sk-user", "sk-admin"
N = 16


def vllm_server(plan_files, plan_dir, log, extra=()) -> RunningServer:
    """`steerfast serve --engine vllm` (eager) with both keys, two plans and a plan dir; its
    environment's OMP_NUM_THREADS is ours (vLLM sizes its threads), its start may take 15 min."""
    flags = [
        "--engine", "vllm", "--vllm-eager", "--api-key", API, "--admin-key", ADMIN,
        "--plan", f"caa={plan_files['caa']}", "--plan", f"sadi_head={plan_files['sadi_head']}",
        "--plan-dir", str(plan_dir), "--vllm-sites", "all", *extra,
    ]  # fmt: skip
    return RunningServer(flags, log, env={"OMP_NUM_THREADS": None}, timeout=900, model="steerfast", poll=2)


@pytest.fixture(scope="module")
def server_paths(tmp_path_factory):
    d = tmp_path_factory.mktemp("vllm-server")
    return d / "plan-dir", d / "server.log"


def _steered_text(client, prompt, plan: str) -> str:
    got = client.completions.create(
        model="steerfast",
        prompt=prompt,
        max_tokens=N,
        temperature=0,
        extra_body={"steering": [{"plan": plan}]},
    )
    return got.choices[0].text


def _oracle(hf, plan, prompt):
    model, tok = hf
    ref, _, _ = hf_greedy(model, tok(prompt)["input_ids"], plan, N)
    return tok.decode(ref, skip_special_tokens=True)


def test_server_steers_refuses_and_keeps_uploads(hf, plan_files, server_paths):
    from openai import BadRequestError, OpenAI

    plan_dir, log = server_paths
    caa = steerfast.SteeringPlan.load(plan_files["caa"])
    server = vllm_server(plan_files, plan_dir, log)
    try:
        client = OpenAI(base_url=server.url, api_key=API)
        prompt = PROMPTS[0]
        plain = client.completions.create(model="steerfast", prompt=prompt, max_tokens=N, temperature=0)
        steered = client.completions.create(
            model="steerfast", prompt=prompt, max_tokens=N, temperature=0,
            extra_body={"steering": [{"plan": "caa", "strength": 4.0}]},
        )  # fmt: skip
        xargs = client.completions.create(
            model="steerfast", prompt=prompt, max_tokens=N, temperature=0,
            extra_body={"vllm_xargs": {"steering": json.dumps([{"plan": "caa", "strength": 4.0}])}},
        )  # fmt: skip
        assert plain.choices[0].text == _oracle(hf, None, prompt)
        assert steered.choices[0].text == _oracle(hf, caa.with_strength(4.0), prompt)
        assert xargs.choices[0].text == steered.choices[0].text != plain.choices[0].text
        with pytest.raises(BadRequestError, match="no-such-plan"):
            client.completions.create(
                model="steerfast",
                prompt=prompt,
                max_tokens=4,
                extra_body={"steering": [{"plan": "no-such-plan"}]},
            )
        # plan upload: the admin key only; then it steers, is listed, and outlives kill -9
        body = open(plan_files["laai"], "rb").read()
        user = httpx.post(
            server.base + "/v1/steering/plans?name=up",
            content=body,
            headers={"Authorization": f"Bearer {API}"},
        )
        assert user.status_code == 403, user.text
        up = httpx.post(
            server.base + "/v1/steering/plans?name=up",
            content=body,
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        assert up.status_code == 201, up.text
        laai = steerfast.SteeringPlan.load(plan_files["laai"])
        want = _oracle(hf, laai, PROMPTS[2])
        assert _steered_text(client, PROMPTS[2], "up") == want
    finally:
        server.kill9()
    server = vllm_server(plan_files, plan_dir, log)
    try:
        listed = httpx.get(
            server.base + "/v1/steering/plans", headers={"Authorization": f"Bearer {API}"}
        ).json()
        assert "up" in {p["name"] for p in listed["data"]}, listed
        client = OpenAI(base_url=server.url, api_key=API)
        assert _steered_text(client, PROMPTS[2], "up") == want
        gone = httpx.delete(
            server.base + "/v1/steering/plans/up", headers={"Authorization": f"Bearer {ADMIN}"}
        )
        assert gone.status_code == 200, gone.text
        with pytest.raises(BadRequestError, match="up"):
            client.completions.create(
                model="steerfast", prompt=PROMPTS[2], max_tokens=4, extra_body={"steering": [{"plan": "up"}]}
            )
    finally:
        server.kill9()


def _sse_monitors(server, path: str, body: dict) -> tuple[str, dict[str, list[float]], int]:
    """(text, readings joined over the chunks, chunks carrying readings) of a streamed request."""
    text, joined, carrying = "", {}, 0
    with httpx.stream(
        "POST", server.base + path, json={**body, "stream": True},
        headers={"Authorization": f"Bearer {API}"}, timeout=120,
    ) as r:  # fmt: skip
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            for choice in json.loads(line[6:]).get("choices", []):
                text += choice.get("text") or (choice.get("delta") or {}).get("content") or ""
                got = choice.get("monitors")
                if got:
                    carrying += 1
                    for name, values in got.items():
                        joined.setdefault(name, []).extend(values)
    return text, joined, carrying


def test_server_returns_monitor_readings(hf, plan_files, monitor_paths, server_paths, tmp_path):
    """choices[i].monitors on /v1/completions and /v1/chat/completions, streamed and not,
    equal to the HF hook oracle's readings; an unknown monitor is a 400 naming it."""
    from openai import BadRequestError, OpenAI

    from steerfast.monitor import load_monitors

    plan_dir, _ = server_paths
    extra = [a for p in monitor_paths for a in ("--monitor", p)]
    server = vllm_server(plan_files, tmp_path / "plans", tmp_path / "server.log", extra)
    try:
        client = OpenAI(base_url=server.url, api_key=API)
        prompt, steer = PROMPTS[1], [{"plan": "caa", "strength": 4.0}]
        body = {"model": "steerfast", "prompt": prompt, "max_tokens": N, "temperature": 0}
        full = client.completions.create(
            **body, extra_body={"steering": steer, "monitors": ["sentiment", "probe0"]}
        )
        got = full.choices[0].model_extra["monitors"]
        model, tok = hf
        monitors = {m.name: m for p in monitor_paths for m in load_monitors(p)}
        caa = steerfast.SteeringPlan.load(plan_files["caa"]).with_strength(4.0)
        ref_tokens, ref = hf_readings(
            model, tok(prompt)["input_ids"], caa, [monitors["sentiment"], monitors["probe0"]], N
        )
        assert full.choices[0].text == tok.decode(ref_tokens, skip_special_tokens=True)
        assert set(got) == {"sentiment", "probe0"}
        for name in got:
            assert len(got[name]) == full.usage.completion_tokens == len(ref[name])
            for a, b in zip(got[name], ref[name]):
                assert within_margin(a, b), (name, a, b)
        text, streamed, carrying = _sse_monitors(
            server, "/v1/completions", {**body, "steering": steer, "monitors": ["sentiment", "probe0"]}
        )
        assert text == full.choices[0].text
        assert carrying > 1  # per chunk, not all at the end
        for name in got:
            assert streamed[name] == pytest.approx(got[name], abs=1e-6)
        plain = client.completions.create(**body)
        assert "monitors" not in (plain.choices[0].model_extra or {})
        chat = {
            "model": "steerfast",
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": N,
            "temperature": 0,
        }
        cfull = client.chat.completions.create(**chat, extra_body={"monitors": ["probe9"]})
        creadings = cfull.choices[0].model_extra["monitors"]["probe9"]
        assert len(creadings) == cfull.usage.completion_tokens
        ctext, cstreamed, _ = _sse_monitors(server, "/v1/chat/completions", {**chat, "monitors": ["probe9"]})
        assert ctext == cfull.choices[0].message.content
        assert cstreamed["probe9"] == pytest.approx(creadings, abs=1e-6)
        with pytest.raises(BadRequestError, match="no-such-monitor"):
            client.completions.create(**body, extra_body={"monitors": ["no-such-monitor"]})
        # each reading handed over is observed in the monitor's histogram on vLLM's /metrics
        metrics = httpx.get(server.base + "/metrics", headers={"Authorization": f"Bearer {API}"}).text
        counts = {
            line.split("{")[1].split('"')[1]: float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("steerfast_monitor_reading_count{")
        }
        assert counts.get("sentiment") == 2 * len(got["sentiment"]), counts  # full + streamed
        assert counts.get("probe9") == 2 * len(creadings), counts
        # every reading was handed over: nothing is kept (the finished requests are forgotten)
        stats = httpx.get(server.base + "/v1/steering/stats", headers={"Authorization": f"Bearer {API}"})
        assert stats.status_code == 200, stats.text
        (worker,) = stats.json()["workers"]
        assert worker["monitors"] == ["sentiment", "probe0", "probe9"]
        assert worker["readings_kept"] == 0, worker
        _concurrent_streams_read_as_alone(server, client)
    finally:
        server.kill9()


def _concurrent_streams_read_as_alone(server, client):
    """Six streams at once (steered or not, different monitors), whose readings the frontend
    takes together (one RPC for all who wait): each equals its request run alone, in full."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = []
    for i, prompt in enumerate(PROMPTS):
        body = {"model": "steerfast", "prompt": prompt, "max_tokens": N, "temperature": 0}
        body["monitors"] = [["sentiment"], ["probe0", "probe9"], ["probe9"]][i % 3]
        if i % 2:
            body["steering"] = [{"plan": "caa", "strength": 4.0}]
        jobs.append(body)
    alone = []
    for body in jobs:
        extra = {k: body[k] for k in ("monitors", "steering") if k in body}
        plain = {k: v for k, v in body.items() if k not in extra}
        got = client.completions.create(**plain, extra_body=extra)
        alone.append(
            (got.choices[0].text, got.choices[0].model_extra["monitors"], got.usage.completion_tokens)
        )
    with ThreadPoolExecutor(len(jobs)) as pool:
        together = list(pool.map(lambda b: _sse_monitors(server, "/v1/completions", b), jobs))
    for body, (text, readings, n), (s_text, s_readings, _) in zip(jobs, alone, together):
        assert s_text == text, body
        assert set(s_readings) == set(body["monitors"]) == set(readings)
        for name in readings:
            assert len(s_readings[name]) == len(readings[name]) == n, (body, name)
            for a, b in zip(s_readings[name], readings[name]):  # batched with others: the oracle's margin
                assert within_margin(a, b), (body, name, a, b)
    stats = httpx.get(server.base + "/v1/steering/stats", headers={"Authorization": f"Bearer {API}"})
    assert stats.json()["workers"][0]["readings_kept"] == 0
