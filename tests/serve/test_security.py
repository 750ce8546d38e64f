"""Keys, Host check, Content-Type, byte / field / queue limits and the plan table budget,
against a real `steerfast serve` process (tiny llama) with the official `openai` client and
raw HTTP where the client would hide what is sent (chunked bodies, Host headers)."""

import json
import select
import signal
import socket
import time

import httpx
import openai
import pytest
import torch
from serve_proc import OCTET, plan_file, tiny_model_dir, tiny_server

KEY, ADMIN = "test-api-key-1", "test-admin-key-2"
UPLOAD_LIMIT = 20_000  # a random_plan file of the tiny llama is ~3 KB
BODY_LIMIT = 4096
PROMPT_CHARS = 200
MARKER = "zqxj-prompt-marker"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("security")
    return d, tiny_model_dir(d), plan_file(d, "p", seed=0)


@pytest.fixture(scope="module")
def server(files):
    d, model, plan = files
    s = tiny_server(
        model,
        d / "server.log",
        "--plan",
        f"p={plan}",
        "--admin-key",
        ADMIN,
        "--max-upload-bytes",
        str(UPLOAD_LIMIT),
        "--max-body-bytes",
        str(BODY_LIMIT),
        "--max-prompt-chars",
        str(PROMPT_CHARS),
        "--max-steering-entries",
        "2",
        "--max-queued",
        "1",
        "--plan-dir",
        str(d / "plans"),
        "--log-prompts",
        env={"STEERFAST_API_KEY": KEY},  # the key from the environment, not the command line
    )
    yield s
    s.stop()


def _h(key=KEY, **extra):
    return {"authorization": f"Bearer {key}", **extra}


def _client(server, key=KEY):
    return openai.OpenAI(base_url=server.base + "/v1", api_key=key, timeout=120, max_retries=0)


def _error(r, status, code):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["message"] and err["type"], err
    return err


def test_health_answers_without_a_key(server):
    assert httpx.get(server.base + "/health", timeout=10).status_code == 200


ENDPOINTS = [
    ("GET", "/v1/models", None),
    ("GET", "/metrics", None),
    ("GET", "/v1/steering/plans", None),
    ("GET", "/v1/steering/stats", None),
    ("POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 2}),
    ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}),
    ("DELETE", "/v1/steering/plans/p", None),
]


@pytest.mark.parametrize("method,path,body", ENDPOINTS)
@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_every_endpoint_but_health_needs_the_api_key(server, method, path, body, key):
    headers = {} if key is None else _h(key)
    r = httpx.request(method, server.base + path, json=body, headers=headers, timeout=30)
    _error(r, 401, "invalid_api_key")
    assert r.headers["www-authenticate"] == "Bearer"


def test_openai_client_with_and_without_the_key(server):
    with pytest.raises(openai.AuthenticationError):
        _client(server, "wrong").completions.create(model=server.model, prompt="Hello", max_tokens=2)
    r = _client(server).completions.create(
        model=server.model, prompt="Hello", max_tokens=3, extra_body={"steering": [{"plan": "p"}]}
    )
    assert r.usage.completion_tokens == 3
    assert _client(server, ADMIN).models.list().data  # the admin key is an API key too


def test_unknown_plan_404_lists_no_names_without_the_key(server):
    r = httpx.post(
        server.base + "/v1/completions",
        json={"prompt": "Hi", "steering": [{"plan": "nope"}]},
        timeout=30,
    )
    _error(r, 401, "invalid_api_key")
    assert "'p'" not in r.text and "loaded" not in r.text
    r = httpx.delete(server.base + "/v1/steering/plans/nope", headers=_h(ADMIN), timeout=30)
    err = _error(r, 404, "unknown_plan")
    assert "'p'" not in err["message"]  # a delete's 404 names only what was asked


def test_plan_management_needs_the_admin_key(server, files):
    data = files[2].read_bytes()
    url = server.base + "/v1/steering/plans"
    _error(
        httpx.post(url, params={"name": "q"}, content=data, headers=_h(**OCTET), timeout=30),
        403,
        "admin_key_required",
    )
    r = httpx.post(url, params={"name": "q"}, content=data, headers=_h(ADMIN, **OCTET), timeout=30)
    assert r.status_code == 201, r.text
    listed = httpx.get(url, headers=_h(), timeout=30).json()["data"]
    assert sorted(p["name"] for p in listed) == ["p", "q"]  # listing needs only the API key
    _error(httpx.delete(url + "/q", headers=_h(), timeout=30), 403, "admin_key_required")
    assert httpx.delete(url + "/q", headers=_h(ADMIN), timeout=30).status_code == 200


def _raw(server, head: bytes, chunks=(), wait_s=30.0):
    """Send a raw HTTP/1.1 request, then `chunks` as chunked-encoding frames one by one,
    stopping as soon as the server answers. Returns (status, body, body bytes sent)."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=wait_s)
    try:
        s.sendall(head)
        sent = 0
        for c in chunks:
            if select.select([s], [], [], 0)[0]:  # the server answered already
                break
            try:
                s.sendall(b"%x\r\n%s\r\n" % (len(c), c))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(c)
            time.sleep(0.002)
        response = b""
        while True:
            part = s.recv(65536)
            if not part:
                break
            response += part
            head_part, sep, body = response.partition(b"\r\n\r\n")
            lengths = [
                int(x.split(b":")[1])
                for x in head_part.split(b"\r\n")
                if x.lower().startswith(b"content-length:")
            ]
            if sep and lengths and len(body) >= lengths[0]:
                break
        head_part, _, body = response.partition(b"\r\n\r\n")
        return int(head_part.split(b" ")[1]), body, sent
    finally:
        s.close()


def test_oversized_chunked_upload_is_413_before_the_body_ends(server, files):
    d = files[0]
    head = (
        b"POST /v1/steering/plans?name=huge HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
        b"Authorization: Bearer %s\r\nContent-Type: application/octet-stream\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" % (server.port, ADMIN.encode())
    )
    chunk = b"x" * 4096
    # up to 50x the limit offered; the server must answer once it has read past the limit,
    # while the body is still open (no final 0-chunk is ever sent)
    status, body, sent = _raw(server, head, [chunk] * (50 * UPLOAD_LIMIT // len(chunk)), wait_s=30)
    assert status == 413, body
    assert json.loads(body)["error"]["code"] == "too_large"
    # answered mid-upload (here: after 5 chunks, 20480 bytes); the slack allows a loaded machine
    assert sent < 10 * UPLOAD_LIMIT
    assert not [p for p in (d / "plans").iterdir() if "huge" in p.name]  # no partial file kept
    names = [
        p["name"]
        for p in httpx.get(server.base + "/v1/steering/plans", headers=_h(), timeout=30).json()["data"]
    ]
    assert "huge" not in names


def test_declared_length_over_the_limit_is_413_without_reading(server):
    r = httpx.post(
        server.base + "/v1/steering/plans",
        params={"name": "big"},
        content=b"x" * (UPLOAD_LIMIT + 1),
        headers=_h(ADMIN, **OCTET),
        timeout=30,
    )
    _error(r, 413, "too_large")
    assert str(UPLOAD_LIMIT) in r.json()["error"]["message"]


def test_json_body_limit_counted_while_reading(server):
    big = json.dumps({"prompt": "a", "pad": "x" * BODY_LIMIT}).encode()
    r = httpx.post(
        server.base + "/v1/completions",
        content=big,
        headers=_h(**{"content-type": "application/json"}),
        timeout=30,
    )
    _error(r, 413, "too_large")
    # chunked, no Content-Length: the count while reading catches it
    head = (
        b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" % (server.port, KEY.encode())
    )
    status, body, _ = _raw(server, head, [big[i : i + 1024] for i in range(0, len(big), 1024)])
    assert status == 413 and json.loads(body)["error"]["code"] == "too_large"


@pytest.mark.parametrize(
    "path,ctype",
    [
        ("/v1/completions", "text/plain"),
        ("/v1/completions", "application/x-www-form-urlencoded"),  # what a web page may POST freely
        ("/v1/chat/completions", None),
        ("/v1/steering/plans?name=x", "application/json"),
    ],
)
def test_posts_need_their_content_type(server, path, ctype):
    headers = _h(ADMIN)
    if ctype:
        headers["content-type"] = ctype
    r = httpx.post(server.base + path, content=b'{"prompt": "Hi"}', headers=headers, timeout=30)
    _error(r, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "host,status",
    [
        ("evil.example", 421),
        ("evil.example:{port}", 421),
        ("127.0.0.1:1", 421),  # another port on this machine
        ("localhost:{port}", 200),
        ("127.0.0.1:{port}", 200),
        ("[::1]:{port}", 200),
    ],
)
def test_host_header_is_checked_on_loopback(server, host, status):
    r = httpx.get(
        server.base + "/v1/models", headers={**_h(), "host": host.format(port=server.port)}, timeout=30
    )
    assert r.status_code == status, r.text
    if status != 200:
        assert r.json()["error"]["code"] == "invalid_host"


def test_missing_host_header_is_400(server):
    status, body, _ = _raw(
        server, b"GET /v1/models HTTP/1.0\r\nAuthorization: Bearer %s\r\n\r\n" % KEY.encode()
    )
    assert status == 400 and json.loads(body)["error"]["code"] == "invalid_host"


def test_prompt_characters_are_limited_before_tokenising(server):
    c = _client(server)
    with pytest.raises(openai.BadRequestError) as e:
        c.completions.create(model=server.model, prompt="a" * (PROMPT_CHARS + 1), max_tokens=2)
    assert e.value.body["code"] == "prompt_too_long" and str(PROMPT_CHARS) in e.value.body["message"]
    msgs = [{"role": "user", "content": "a" * (PROMPT_CHARS // 2 + 1)}] * 2  # the sum counts
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model=server.model, messages=msgs, max_tokens=2)
    assert e.value.body["code"] == "prompt_too_long"
    assert (
        c.completions.create(model=server.model, prompt="a" * 20, max_tokens=2).usage.completion_tokens == 2
    )


def test_steering_entries_per_request_are_limited(server):
    c = _client(server)
    with pytest.raises(openai.BadRequestError) as e:
        c.completions.create(
            model=server.model, prompt="Hi", max_tokens=2, extra_body={"steering": [{"plan": "p"}] * 3}
        )
    assert e.value.body["code"] == "too_many_steering_entries"
    r = c.completions.create(
        model=server.model, prompt="Hi", max_tokens=2, extra_body={"steering": [{"plan": "p"}] * 2}
    )
    assert r.usage.completion_tokens == 2


def test_requests_over_max_queued_get_429_with_retry_after(server):
    """--max-queued 1: while one generation streams, another is refused; after it, served."""
    c = _client(server)
    stream = c.completions.create(model=server.model, prompt="Hi", max_tokens=64, temperature=0, stream=True)
    chunks = iter(stream)
    next(chunks)  # admitted and generating
    r = httpx.post(
        server.base + "/v1/completions", json={"prompt": "Hi", "max_tokens": 2}, headers=_h(), timeout=30
    )
    err = _error(r, 429, "too_many_requests")
    assert int(r.headers["retry-after"]) >= 1 and "--max-queued" in err["message"]
    rest = list(chunks)
    assert len(rest) > 10  # it was still generating when the second came (greedy: no early EOS)
    assert c.completions.create(model=server.model, prompt="Hi", max_tokens=2).usage.completion_tokens == 2


def test_plan_over_the_table_budget_is_422_naming_it(files, tmp_path):
    from steerfast.serve.plan_budget import table_bytes
    from steerfast.testing import random_plan, tiny_model

    d, model, plan = files
    need = table_bytes(tiny_model("llama"), random_plan(tiny_model("llama"), seed=0), 8)
    s = tiny_server(
        model, tmp_path / "budget.log", "--allow-plan-uploads", "--max-plan-table-bytes", str(need - 1)
    )
    try:
        url = s.base + "/v1/steering/plans"
        r = httpx.post(url, params={"name": "p"}, content=plan.read_bytes(), headers=OCTET, timeout=30)
        err = _error(r, 422, "plan_over_budget")
        assert str(need - 1) in err["message"] and str(need) in err["message"]
        assert httpx.get(url, timeout=30).json()["data"] == []
        # no keys and --allow-plan-uploads: anyone may manage plans; a plan that fits is taken
        from steerfast.plan import Intervention, SteeringPlan

        small = tmp_path / "small.safetensors"
        one = torch.ones(1, 64)  # one add row at one site of the tiny llama (hidden 64)
        SteeringPlan([Intervention(1, "mlp.out", "add", one)], "t").save(small)
        r = httpx.post(url, params={"name": "small"}, content=small.read_bytes(), headers=OCTET, timeout=30)
        assert r.status_code == 201, r.text
    finally:
        s.stop()


def test_plan_management_is_off_without_admin_key_or_flag(files, tmp_path):
    d, model, plan = files
    s = tiny_server(model, tmp_path / "off.log", "--drain-s", "20")
    try:
        r = httpx.post(
            s.base + "/v1/steering/plans",
            params={"name": "p"},
            content=plan.read_bytes(),
            headers=OCTET,
            timeout=30,
        )
        _error(r, 403, "plan_management_disabled")
        _error(httpx.delete(s.base + "/v1/steering/plans/p", timeout=30), 403, "plan_management_disabled")
        # SIGTERM drains: the running stream ends normally, a new request gets 503 + Retry-After
        c = _client(s, "unused")
        chunks = iter(
            c.completions.create(model=s.model, prompt="Hi", max_tokens=64, temperature=0, stream=True)
        )
        next(chunks)
        s.proc.send_signal(signal.SIGTERM)
        deadline = time.time() + 20
        while True:
            r = httpx.post(s.base + "/v1/completions", json={"prompt": "Hi", "max_tokens": 2}, timeout=30)
            if r.status_code == 503 or time.time() > deadline:
                break
            time.sleep(0.05)
        _error(r, 503, "draining")
        assert r.headers["retry-after"]
        rest = list(chunks)
        assert rest[-1].choices[0].finish_reason in ("length", "stop")
        assert s.proc.wait(timeout=60) == 0
    finally:
        s.stop()


def test_access_log_names_steering_and_prompts_only_when_asked(server):
    _client(server).completions.create(
        model=server.model, prompt=f"{MARKER} hi", max_tokens=2, extra_body={"steering": [{"plan": "p"}]}
    )
    time.sleep(0.2)
    lines = [l for l in server.log().splitlines() if MARKER in l]
    assert len(lines) == 1, lines  # this server runs with --log-prompts
    line = lines[0]
    assert '"POST /v1/completions" 200' in line and "steering=p" in line
    assert "prompt_tokens=" in line and "completion_tokens=2" in line


def test_table_bytes_is_what_the_bank_allocates():
    from steerfast.runtime.bank import SteeringBank
    from steerfast.serve.plan_budget import table_bytes
    from steerfast.testing import random_plan, tiny_model

    for arch in ("llama", "gpt2", "gemma2"):
        model = tiny_model(arch)
        plan = random_plan(model, seed=1)
        bank = SteeringBank(model, slots=3)
        try:
            bank.load(1, plan)
            allocated = sum(
                t.numel() * t.element_size()
                for mt in bank._tables.values()
                for st in mt.inputs + mt.outputs
                if st is not None
                for t in (st.mask, st.delta, st.bias, st.coef)
                if t is not None
            )
        finally:
            bank.revert()
        assert table_bytes(model, plan, 3) == allocated, arch
