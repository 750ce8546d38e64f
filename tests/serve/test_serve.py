"""`steerfast serve` end to end: a real server on 127.0.0.1 (a subprocess started and stopped
here), the official `openai` client, greedy outputs compared token for token with
`steerfast.generate` of each request alone.

Plans come from the recipes on small data (steerfast.serve.demo_plans), built once per session.
"""

import os
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from steerfast.serve.app import chat_prompt
from steerfast.steered_generation import Steer, generate

pytestmark = pytest.mark.slow
OCTET = {"content-type": "application/octet-stream"}  # plan uploads (415 otherwise)

NEW = 6
PROMPTS = ["The weather today is", "My favourite food is"]
CONFIGS = {
    "caa+": [{"plan": "caa", "strength": 4.0}],
    "caa-": [{"plan": "caa", "strength": -4.0}],
    "actadd": [{"plan": "actadd"}],
    "sadi": [{"plan": "sadi"}],
    "laai": [{"plan": "laai"}],
    "combo": [{"plan": "caa", "strength": 2.0}, {"plan": "sadi"}],
    "caa-all": [{"plan": "caa", "strength": 3.0, "positions": "all"}],
    "none": [],
}


@pytest.fixture(scope="session")
def plans(default_model, tmp_path_factory):
    from steerfast.serve.demo_plans import build

    model, tok = default_model
    built = build(model, tok)
    folder = tmp_path_factory.mktemp("plans")
    paths = {}
    for name, plan in built.items():
        paths[name] = folder / f"{name}.safetensors"
        plan.save(paths[name])
    return built, paths


@pytest.fixture(scope="module")
def server(plans, start_server):
    _, paths = plans
    flags = ["--served-model-name", "smollm2", "--slots", "8", "--max-prompt-tokens", "64"]
    flags += ["--max-tokens", "32", "--allow-plan-uploads"]
    for name in ("caa", "actadd", "sadi", "laai"):
        flags += ["--plan", f"{name}={paths[name]}"]
    return start_server(*flags).base


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server + "/v1", api_key="unused", timeout=180, max_retries=0)


def _steer(plans, entries):
    combined = None
    for e in entries:
        p = plans[e["plan"]]
        if "strength" in e:
            p = p.with_strength(e["strength"])
        if "positions" in e:
            p = p.with_positions(e["positions"])
        combined = p if combined is None else combined + p
    return None if combined is None else Steer(combined)


def _solo(default_model, plans, prompt, entries, new=NEW):
    """steerfast.generate of this one request: the generated ids up to and including EOS."""
    model, tok = default_model
    n = len(tok(prompt)["input_ids"])
    _, out = generate(
        model,
        tok,
        [prompt],
        steer=[_steer(plans, entries)],
        max_new_tokens=new,
        do_sample=False,
        return_ids=True,
    )
    ids = out[0, n:].tolist()
    return ids[: ids.index(tok.eos_token_id) + 1] if tok.eos_token_id in ids else ids


def _complete(client, prompt, entries, new=NEW, **kw):
    r = client.completions.create(
        model="smollm2", prompt=prompt, max_tokens=new, temperature=0, extra_body={"steering": entries}, **kw
    )
    return r.choices[0]


def test_health_and_metrics(server):
    assert httpx.get(server + "/health", timeout=10).json()["status"] == "ok"
    m = httpx.get(server + "/v1/steering/stats", timeout=10).json()
    assert m["resident_plans"] == ["actadd", "caa", "laai", "sadi"]
    assert m["slots"] == 8 and m["queue_depth"] >= 0


def test_steered_request_equals_generate_alone(client, default_model, plans):
    entries = CONFIGS["caa-"]
    want = _solo(default_model, plans[0], PROMPTS[0], entries)
    unsteered = _solo(default_model, plans[0], PROMPTS[0], [])
    got = _complete(client, PROMPTS[0], entries)
    assert got.model_extra["token_ids"] == want
    assert want != unsteered
    assert got.text == default_model[1].decode(want, skip_special_tokens=True)


def test_16_concurrent_requests_8_configurations_each_equals_its_solo_run(
    client, default_model, plans, server
):
    jobs = [(name, prompt) for name in CONFIGS for prompt in PROMPTS]
    before = httpx.get(server + "/v1/steering/stats", timeout=10).json()["requests_total"]
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(_complete, client, p, CONFIGS[n]) for n, p in jobs]
        got = [f.result(timeout=600).model_extra["token_ids"] for f in futures]
    want = [_solo(default_model, plans[0], p, CONFIGS[n]) for n, p in jobs]
    mismatched = [jobs[i] for i in range(len(jobs)) if got[i] != want[i]]
    assert not mismatched, f"differs from its solo run: {mismatched}"
    assert len({tuple(w) for w in want}) >= 12  # the configurations really differ
    assert httpx.get(server + "/v1/steering/stats", timeout=10).json()["requests_total"] - before == len(jobs)


def test_streaming_equals_non_streaming_chat(client, default_model, plans):
    msgs = [{"role": "user", "content": "Describe your day in one sentence."}]
    entries = [{"plan": "caa", "strength": 4.0}]
    full = client.chat.completions.create(
        model="smollm2", messages=msgs, max_tokens=NEW, temperature=0, extra_body={"steering": entries}
    )
    text, ids, reasons = "", [], []
    for chunk in client.chat.completions.create(
        model="smollm2",
        messages=msgs,
        max_tokens=NEW,
        temperature=0,
        stream=True,
        extra_body={"steering": entries},
    ):
        c = chunk.choices[0]
        text += c.delta.content or ""
        ids += (c.model_extra or {}).get("token_ids") or []
        reasons.append(c.finish_reason)
    assert text == full.choices[0].message.content
    assert ids == full.choices[0].model_extra["token_ids"]
    assert reasons[-1] == full.choices[0].finish_reason and len(reasons) > 2
    model, tok = default_model
    assert ids == _solo(default_model, plans[0], chat_prompt(tok, msgs), entries)


def test_upload_and_delete_while_requests_are_in_flight(client, server, default_model, plans):
    built, paths = plans
    up = httpx.post(
        server + "/v1/steering/plans",
        params={"name": "sadi_b"},
        content=paths["sadi"].read_bytes(),
        headers=OCTET,
        timeout=60,
    )
    assert up.status_code == 201, up.text
    entries = [[{"plan": "sadi_b"}], [{"plan": "caa", "strength": -4.0}]]
    jobs = [(p, e) for p in PROMPTS for e in entries]
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(_complete, client, p, e, 10) for p, e in jobs]
        deadline = time.time() + 120
        while httpx.get(server + "/v1/steering/stats", timeout=10).json()["requests_active"] < 1:
            assert time.time() < deadline, "requests never became active"
            time.sleep(0.05)
        # while they run: delete the plan some of them use, upload another, use it
        assert httpx.delete(server + "/v1/steering/plans/sadi_b", timeout=30).status_code == 200
        up = httpx.post(
            server + "/v1/steering/plans",
            params={"name": "laai_b"},
            content=paths["laai"].read_bytes(),
            headers=OCTET,
            timeout=60,
        )
        assert up.status_code == 201, up.text
        active = httpx.get(server + "/v1/steering/stats", timeout=10).json()["requests_active"]
        late = _complete(client, PROMPTS[1], [{"plan": "laai_b"}]).model_extra["token_ids"]
        got = [f.result(timeout=600).model_extra["token_ids"] for f in futures]
    assert active >= 1  # the changes happened mid-flight
    ref = {"sadi_b": "sadi"}
    want = [
        _solo(default_model, built, p, [{**x, "plan": ref.get(x["plan"], x["plan"])} for x in e], 10)
        for p, e in jobs
    ]
    assert got == want
    assert late == _solo(default_model, built, PROMPTS[1], [{"plan": "laai"}])
    with pytest.raises(openai.NotFoundError, match="sadi_b"):
        _complete(client, PROMPTS[0], [{"plan": "sadi_b"}], 2)
    assert httpx.delete(server + "/v1/steering/plans/laai_b", timeout=30).status_code == 200


def _plans(server):
    return sorted(p["name"] for p in httpx.get(server + "/v1/steering/plans", timeout=10).json()["data"])


def _foreign_plan_bytes(tmp_path):
    from steerfast.testing import random_plan, tiny_model

    path = tmp_path / "foreign.safetensors"
    random_plan(tiny_model("llama")).save(path)
    return path.read_bytes()


BAD = {
    "unknown plan": (
        404,
        "unknown_plan",
        lambda s, t: ("json", {"prompt": "Hi", "steering": [{"plan": "nope"}]}),
    ),
    "strength not a number": (
        400,
        "invalid_steering",
        lambda s, t: ("json", {"prompt": "Hi", "steering": [{"plan": "caa", "strength": "big"}]}),
    ),
    "strength infinite": (
        400,
        "invalid_steering",
        lambda s, t: ("raw", b'{"prompt": "Hi", "steering": [{"plan": "caa", "strength": Infinity}]}'),
    ),
    "bad positions": (
        400,
        "invalid_steering",
        lambda s, t: ("json", {"prompt": "Hi", "steering": [{"plan": "caa", "positions": "middle"}]}),
    ),
    "malformed JSON": (400, "malformed_json", lambda s, t: ("raw", b'{"prompt": "Hi",')),
    "prompt over the limit": (400, "invalid_request", lambda s, t: ("json", {"prompt": "word " * 200})),
    "max_tokens over the limit": (
        400,
        "invalid_request",
        lambda s, t: ("json", {"prompt": "Hi", "max_tokens": 10_000}),
    ),
    "temperature out of range": (
        400,
        "invalid_request",
        lambda s, t: ("json", {"prompt": "Hi", "temperature": 2.5}),
    ),
    "unknown field": (400, "unknown_field", lambda s, t: ("json", {"prompt": "Hi", "best_of_all": 2})),
    "unknown model": (404, "model_not_found", lambda s, t: ("json", {"prompt": "Hi", "model": "gpt-4"})),
    "corrupt upload": (422, "invalid_plan", lambda s, t: ("upload", os.urandom(2048))),
    "foreign upload": (422, "invalid_plan", lambda s, t: ("upload", _foreign_plan_bytes(t))),
    "duplicate name": (409, "plan_exists", lambda s, t: ("upload", None)),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_request_gets_4xx_and_the_server_keeps_serving(case, server, client, plans, tmp_path):
    status, code, make = BAD[case]
    kind, payload = make(server, tmp_path)
    before = _plans(server)
    if kind == "json":
        r = httpx.post(server + "/v1/completions", json=payload, timeout=60)
    elif kind == "raw":
        r = httpx.post(
            server + "/v1/completions",
            content=payload,
            headers={"content-type": "application/json"},
            timeout=60,
        )
    else:
        name = "caa" if payload is None else "incoming"
        data = plans[1]["caa"].read_bytes() if payload is None else payload
        r = httpx.post(
            server + "/v1/steering/plans", params={"name": name}, content=data, headers=OCTET, timeout=60
        )
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["message"]
    assert _plans(server) == before  # nothing loaded changed
    assert _complete(client, "Hello", [{"plan": "caa"}], 2).finish_reason in ("length", "stop")


def test_bank_full_is_a_clear_error(server, plans):
    data = plans[1]["caa"].read_bytes()
    extra = [f"extra{i}" for i in range(8 - len(_plans(server)))]
    try:
        for name in extra:
            assert (
                httpx.post(
                    server + "/v1/steering/plans",
                    params={"name": name},
                    content=data,
                    headers=OCTET,
                    timeout=60,
                ).status_code
                == 201
            )
        r = httpx.post(
            server + "/v1/steering/plans",
            params={"name": "one_too_many"},
            content=data,
            headers=OCTET,
            timeout=60,
        )
        assert r.status_code == 409 and r.json()["error"]["code"] == "bank_full"
        assert "8 slots" in r.json()["error"]["message"]
    finally:
        for name in extra:
            httpx.delete(server + f"/v1/steering/plans/{name}", timeout=30)
    assert _plans(server) == ["actadd", "caa", "laai", "sadi"]
