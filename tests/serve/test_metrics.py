"""`/metrics` parses as Prometheus text (prometheus_client's own parser) and its counts move
by exactly what was sent; one access-log line per request, without prompt text by default
(a real `steerfast serve` process on the tiny llama, the official `openai` client)."""

import time

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from serve_proc import plan_file, tiny_model_dir, tiny_server

KEY = "metrics-key"
SECRET = "do-not-log-this-prompt-7731"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("metrics")
    s = tiny_server(
        tiny_model_dir(d), d / "server.log", "--plan", f"p={plan_file(d, 'p', 0)}", "--api-key", KEY
    )
    yield s
    s.stop()


def scrape(server) -> dict:
    r = httpx.get(server.base + "/metrics", headers={"authorization": f"Bearer {KEY}"}, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def delta(after, before, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_counts_move_by_what_was_sent(server):
    c = openai.OpenAI(base_url=server.base + "/v1", api_key=KEY, timeout=120, max_retries=0)
    before = scrape(server)
    r = c.completions.create(
        model=server.model,
        prompt=f"{SECRET} a",
        max_tokens=5,
        temperature=0,
        extra_body={"steering": [{"plan": "p"}]},
    )
    chunks = list(
        c.chat.completions.create(
            model=server.model,
            messages=[{"role": "user", "content": "Hi"}],
            max_tokens=6,
            temperature=0,
            stream=True,
            extra_body={"steering": [{"plan": "p"}]},
        )
    )
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.base + "/v1", api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError):
        c.completions.create(
            model=server.model, prompt="a", max_tokens=2, extra_body={"steering": [{"plan": "nope"}]}
        )
    after = scrape(server)

    req = "steerfast_requests_total"
    assert delta(after, before, req, endpoint="/v1/completions", method="POST", status="200") == 1
    assert delta(after, before, req, endpoint="/v1/completions", method="POST", status="404") == 1
    assert delta(after, before, req, endpoint="/v1/chat/completions", method="POST", status="200") == 1
    assert delta(after, before, req, endpoint="/v1/models", method="GET", status="401") == 1
    assert delta(after, before, "steerfast_plan_requests_total", plan="p") == 2
    # a name that is not a plan gets no series (a client cannot grow the label set)
    assert ("steerfast_plan_requests_total", (("plan", "nope"),)) not in after
    assert delta(after, before, "steerfast_request_duration_seconds_count", endpoint="/v1/completions") == 2

    streamed = [ch for ch in chunks if ch.choices and ch.choices[0].delta.content]
    assert delta(after, before, "steerfast_stream_time_to_first_token_seconds_count") == 1
    assert delta(after, before, "steerfast_stream_inter_token_latency_seconds_count") == len(streamed) - 1
    assert delta(after, before, "steerfast_prompt_tokens_total") >= r.usage.prompt_tokens
    out = delta(after, before, "steerfast_generation_tokens_total")
    assert out >= r.usage.completion_tokens + 1  # the completion's 5 + the stream's tokens
    assert delta(after, before, "steerfast_engine_tokens_generated_total") >= r.usage.completion_tokens
    # the engine's own histograms: one first token for each of the two generations
    assert delta(after, before, "steerfast_engine_ttft_seconds_count") == 2
    assert delta(after, before, "steerfast_engine_ttft_seconds_bucket", le="+Inf") == 2

    for gauge in ("steerfast_queue_depth", "steerfast_slots_busy", "steerfast_requests_in_flight"):
        assert after[(gauge, ())] == 0, gauge  # nothing in flight once the responses are in
    assert after[("steerfast_slots", ())] == 8
    assert after[("steerfast_engine_running", ())] == 1
    used, total = after[("steerfast_kv_blocks_used", ())], after[("steerfast_kv_blocks_total", ())]
    assert total > 0 and 0 <= used <= total


def test_one_access_log_line_per_request_without_prompt_text(server):
    c = openai.OpenAI(base_url=server.base + "/v1", api_key=KEY, timeout=120, max_retries=0)
    n0 = server.log().count("steerfast.access")
    c.completions.create(
        model=server.model,
        prompt=f"{SECRET} b",
        max_tokens=3,
        temperature=0,
        extra_body={"steering": [{"plan": "p"}]},
    )
    httpx.get(server.base + "/v1/models", timeout=30)  # 401
    time.sleep(0.2)
    lines = [l for l in server.log().splitlines() if "steerfast.access" in l][n0:]
    assert len(lines) == 2, lines
    assert '"POST /v1/completions" 200' in lines[0]
    assert "completion_tokens=3" in lines[0] and "steering=p" in lines[0] and "ms " in lines[0]
    assert '"GET /v1/models" 401' in lines[1] and "error=invalid_api_key" in lines[1]
    assert SECRET not in server.log()  # never the prompt without --log-prompts
