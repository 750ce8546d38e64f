"""Regression tests for the nine server defects of issue 34 (item 3), each against a real
`steerfast serve` process on a tiny llama, with the official openai client where the request
is an OpenAI one. Each failed on the server before its fix."""

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from serve_proc import OCTET, plan_file, tiny_model_dir, tiny_server

STEP_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("defects")
    return d, tiny_model_dir(d, context=1024)  # room for long requests and prompts


@pytest.fixture(scope="module")
def srv(files):
    """8 tokens per engine step: a long request takes many steps, each far under the timeout."""
    d, model = files
    s = tiny_server(
        model,
        d / "server.log",
        *("--step-timeout-s", str(STEP_TIMEOUT_S), "--max-tokens", "1024", "--max-prompt-tokens", "512"),
        # small steps, so the work below outlasts the timeout several times even on a fast CPU
        *("--max-batch-tokens", "4", "--kv-tokens", "32768", "--slots", "4"),
        *("--allow-plan-uploads", "--plan-dir", str(d / "plans")),
    )
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(srv):
    return srv.client()


def scrape(srv) -> dict:
    out = {}
    for fam in text_string_to_metric_families(httpx.get(srv.base + "/metrics", timeout=30).text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def engine_tokens(srv) -> float:
    return scrape(srv)[("steerfast_engine_tokens_generated_total", ())]


def upload(srv, name, data):
    return httpx.post(
        srv.base + "/v1/steering/plans", params={"name": name}, content=data, headers=OCTET, timeout=60
    )


def assert_nothing_left(srv):
    regs = srv.settled_registrations()
    assert not any(regs.values()), regs


# --- 1. the step timeout means "no progress for N s", streamed or not ------------------------
def test_1_a_non_streamed_request_producing_tokens_is_not_timed_out(srv, client):
    t0 = time.monotonic()
    r = client.completions.create(model="m", prompt="hello", n=16, max_tokens=1000, temperature=0)
    took = time.monotonic() - t0
    assert took > 2 * STEP_TIMEOUT_S, f"took {took:.2f} s: too fast to test the timeout"
    assert r.usage.completion_tokens > 16 * 8 and all(c.finish_reason for c in r.choices)


def test_1_streamed_requests_waiting_in_a_moving_queue_are_not_timed_out(srv, client):
    prompts = [f"{i:03d}" + "xyzw" * 119 for i in range(24)]  # 480 tokens each, no shared prefix

    def first_token_wait(p):
        t0, first, text = time.monotonic(), None, ""
        for ch in client.completions.create(model="m", prompt=p, max_tokens=3, temperature=0, stream=True):
            first = first if first is not None else time.monotonic() - t0
            text += ch.choices[0].text if ch.choices else ""
        return first

    with ThreadPoolExecutor(24) as pool:
        waits = list(pool.map(first_token_wait, prompts))
    assert max(waits) > 2 * STEP_TIMEOUT_S, f"waits {waits}: the queue was too short to test"
    assert_nothing_left(srv)


# --- 2. plan names that do not round-trip through --plan-dir are refused at upload -----------
def test_2_every_201_upload_is_listed_after_a_restart(files):
    d, model = files
    plan_dir = d / "names"
    data = plan_file(d, "n", 4).read_bytes()
    s = tiny_server(
        model, d / "names.log", "--allow-plan-uploads", "--plan-dir", str(plan_dir), "--slots", "8"
    )
    try:
        codes = {n: upload(s, n, data) for n in (".hidden", "..x", "-dash", "é", "ok.v1", "a_b-c", "Z9")}
    finally:
        s.stop()
    for bad in (".hidden", "..x", "-dash", "é"):
        r = codes[bad]
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_plan_name", (bad, r.text)
        assert r.json()["error"]["param"] == "name"
    created = sorted(n for n, r in codes.items() if r.status_code == 201)
    assert created == ["Z9", "a_b-c", "ok.v1"]
    again = tiny_server(model, d / "names2.log", "--allow-plan-uploads", "--plan-dir", str(plan_dir))
    try:
        listed = httpx.get(again.base + "/v1/steering/plans", timeout=30).json()["data"]
        assert sorted(p["name"] for p in listed) == created
    finally:
        again.stop()


# --- 3. deeply nested JSON is a 400 -----------------------------------------------------------
@pytest.mark.parametrize("depth", [40, 5000])
@pytest.mark.parametrize("path", ["/v1/completions", "/v1/chat/completions"])
def test_3_deeply_nested_json_is_a_400(srv, path, depth):
    field = "prompt" if path == "/v1/completions" else "messages"
    body = f'{{"{field}": ' + "[" * depth + "]" * depth + ', "max_tokens": 2}'
    r = httpx.post(srv.base + path, content=body, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "malformed_json" and "nests deeper" in r.json()["error"]["message"]


# --- 4. a lone surrogate is a 400 naming the field --------------------------------------------
@pytest.mark.parametrize(
    "path, body, param",
    [
        ("/v1/completions", '{"prompt": "ab\\ud800cd", "max_tokens": 2}', "prompt"),
        (
            "/v1/chat/completions",
            '{"messages": [{"role": "user", "content": "hi \\udfff"}], "max_tokens": 2}',
            "messages[0].content",
        ),
        (
            "/v1/chat/completions",
            '{"messages": [{"role": "user", "content": [{"type": "text", "text": "\\ud83d"}]}]}',
            "messages[0].content[0].text",
        ),
    ],
)
def test_4_lone_surrogates_are_a_400(srv, path, body, param):
    r = httpx.post(srv.base + path, content=body, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_unicode" and err["param"] == param
    assert httpx.get(srv.base + "/health", timeout=10).status_code == 200


# --- 5. what a request writes into the log stays on its line ----------------------------------
def test_5_newline_in_user_and_nul_in_path_are_escaped_in_the_log(srv, client):
    client.completions.create(model="m", prompt="hi", max_tokens=2, user="eve\nFORGED access line\r\x1b[2J")
    assert httpx.get(srv.base + "/v1/x%00y%0AFORGED2", timeout=10).status_code == 404
    time.sleep(0.3)
    raw = srv.log_path.read_bytes()
    assert b"\x00" not in raw and b"\x1b" not in raw
    lines = raw.decode().splitlines()
    assert not any(line.startswith(("FORGED", "\r")) for line in lines)
    assert any("user=eve\\x0aFORGED access line\\x0d\\x1b[2J" in line for line in lines)
    assert any('"GET /v1/x\\x00y\\x0aFORGED2" 404' in line for line in lines)


# --- 6. OpenAI-shaped errors everywhere, HEAD answered ----------------------------------------
def _shape(r, status, code):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["code"] == code, err
    return err


def test_6_404_405_bad_length_and_refusals_are_openai_shaped(srv):
    _shape(httpx.get(srv.base + "/v1/nope", timeout=10), 404, "not_found")
    r = httpx.get(srv.url + "/completions", timeout=10)
    assert _shape(r, 405, "method_not_allowed") and r.headers["allow"] == "POST"
    r = httpx.post(
        srv.url + "/completions", content=b"{}", headers={"content-type": "text/plain"}, timeout=10
    )
    assert _shape(r, 415, "unsupported_media_type")["param"] is None
    r = httpx.post(srv.url + "/completions", json={"prompt": "x" * 40000}, timeout=10)
    assert _shape(r, 400, "prompt_too_long")["param"] == "prompt"
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: abc\r\n\r\n{}"
        )
        raw = b""
        while chunk := sock.recv(4096):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head
    assert json.loads(body)["error"]["code"] == "malformed_http"


def test_6_head_is_answered_like_get_without_a_body(srv):
    for path in ("/health", "/v1/models", "/metrics", "/v1/steering/plans", "/v1/steering/stats"):
        get, head = httpx.get(srv.base + path, timeout=10), httpx.head(srv.base + path, timeout=10)
        assert head.status_code == get.status_code == 200 and head.content == b"", path
        assert head.headers["content-type"] == get.headers["content-type"]
    r = httpx.head(srv.url + "/completions", timeout=10)
    assert r.status_code == 405 and r.headers["allow"] == "POST"


# --- 7. tokens counted as produced; a deleted plan's series goes ------------------------------
def test_7_engine_tokens_count_while_a_request_runs_and_when_cancelled(srv, client):
    before = engine_tokens(srv)
    done = threading.Event()

    def long_request():
        try:
            client.completions.create(model="m", prompt="count", n=16, max_tokens=256, temperature=0)
        finally:
            done.set()

    t = threading.Thread(target=long_request)
    t.start()
    seen_while_running = 0.0
    while not done.is_set():
        seen_while_running = max(seen_while_running, engine_tokens(srv) - before)
        if seen_while_running >= 100:
            break
        time.sleep(0.05)
    assert not done.is_set() and seen_while_running >= 100  # counted before the response exists
    t.join()

    before = engine_tokens(srv)
    http_before = scrape(srv)[("steerfast_generation_tokens_total", ())]
    stream = client.completions.create(model="m", prompt="leave", max_tokens=256, temperature=0, stream=True)
    got = 0
    for ch in stream:
        got += len(ch.choices[0].model_extra.get("token_ids") or []) if ch.choices else 0
        if got >= 5:
            break
    stream.close()  # the client goes away mid-stream: the request is cancelled
    assert_nothing_left(srv)
    after = scrape(srv)
    assert got <= after[("steerfast_engine_tokens_generated_total", ())] - before < 256
    assert after[("steerfast_generation_tokens_total", ())] - http_before >= got


def test_7_a_deleted_plans_series_is_removed_and_unknown_names_get_none(srv, client, files):
    d, _ = files
    assert upload(srv, "short-lived", plan_file(d, "sl", 9).read_bytes()).status_code == 201
    client.completions.create(
        model="m", prompt="a", max_tokens=2, extra_body={"steering": [{"plan": "short-lived"}]}
    )
    with pytest.raises(openai.NotFoundError):
        client.completions.create(
            model="m", prompt="a", max_tokens=2, extra_body={"steering": [{"plan": "nope"}]}
        )
    series = {k[1] for k in scrape(srv) if k[0] == "steerfast_plan_requests_total"}
    assert (("plan", "short-lived"),) in series and (("plan", "nope"),) not in series
    assert httpx.delete(srv.base + "/v1/steering/plans/short-lived", timeout=30).status_code == 200
    series = {k[1] for k in scrape(srv) if k[0] == "steerfast_plan_requests_total"}
    assert (("plan", "short-lived"),) not in series


# --- 8. a chat rendered with its BOS is not given a second one --------------------------------
def test_8_chat_template_with_bos_is_tokenised_without_adding_another(tmp_path):
    from transformers import AutoTokenizer

    model = tiny_model_dir(tmp_path, bos=True)
    tok = AutoTokenizer.from_pretrained(model)
    assert tok("ab")["input_ids"][0] == tok.bos_token_id  # the tokenizer adds BOS to plain text
    msgs = [{"role": "user", "content": "Hi there"}]
    rendered = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    want = tok(rendered, add_special_tokens=False)["input_ids"]
    assert rendered.startswith("<bos>") and want.count(tok.bos_token_id) == 1
    s = tiny_server(model, tmp_path / "bos.log")
    try:
        c = s.client()
        chat = c.chat.completions.create(model="m", messages=msgs, max_tokens=2, temperature=0)
        assert chat.usage.prompt_tokens == len(want)
        done = c.completions.create(model="m", prompt="ab", max_tokens=2, temperature=0)
        assert done.usage.prompt_tokens == 3  # <bos> a b: a completion prompt still gets its BOS
    finally:
        s.stop()


# --- 9. completions top_logprobs best first ---------------------------------------------------
def test_9_completions_top_logprobs_are_ordered_best_first(client):
    r = client.completions.create(model="m", prompt="order", max_tokens=6, logprobs=5, temperature=0)
    tops = r.choices[0].logprobs.top_logprobs
    assert len(tops) == 6
    for top in tops:
        values = list(top.values())
        assert len(values) >= 2 and values == sorted(values, reverse=True), top


def test_nothing_is_left_registered_after_all_of_the_above(srv):
    assert_nothing_left(srv)
