"""The OpenAI contract of /v1/completions and /v1/chat/completions, honoured or refused, against
a real `steerfast serve` process (tiny random llama + character tokenizer) with the official
`openai` client: sampling, seeds, stop, logprobs, n, usage, model, every formerly ignored
field, error shapes, and an error event mid-stream (the engine's own fault seam)."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
import torch
from serve_proc import plan_file

import steerfast
from steerfast.steered_generation import Steer, generate

PROMPT = "hello world, "
FAULT_PROMPT = (
    "f" * 30
)  # 30 tokens (one per character): a step holding it raises (STEERFAST_FAULT_PROMPT_TOKENS)


@pytest.fixture(scope="module")
def ref(tiny_model_path, tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from steerfast.plan import SteeringPlan

    d = tmp_path_factory.mktemp("plans")
    path = plan_file(d, "p", seed=0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path).eval()
    return model, AutoTokenizer.from_pretrained(tiny_model_path), path, SteeringPlan.load(path)


@pytest.fixture(scope="module")
def srv(start_server, tiny_model_path, ref):
    return start_server(
        "--model",
        str(tiny_model_path),
        "--max-tokens",
        "24",
        "--max-prompt-tokens",
        "64",
        "--plan",
        f"p={ref[2]}",
        env={"STEERFAST_FAULT_PROMPT_TOKENS": "30"},
    )


@pytest.fixture(scope="module")
def client(srv):
    return srv.client()


def _solo(ref, prompt, new, steered=False):
    model, tok, _, plan = ref
    n = len(tok(prompt)["input_ids"])
    _, out = generate(
        model,
        tok,
        [prompt],
        steer=[Steer(plan) if steered else None],
        max_new_tokens=new,
        do_sample=False,
        return_ids=True,
    )
    ids = out[0, n:].tolist()
    return ids[: ids.index(tok.eos_token_id) + 1] if tok.eos_token_id in ids else ids


def _ids(choice):
    return choice.model_extra["token_ids"]


def _steer(on):
    return {"steering": [{"plan": "p"}]} if on else {}


@pytest.mark.parametrize("steered", [False, True])
def test_temperature_0_and_top_k_1_equal_greedy_generate(client, srv, ref, steered):
    want = _solo(ref, PROMPT, 12, steered)
    got = client.completions.create(
        model=srv.model, prompt=PROMPT, max_tokens=12, temperature=0, extra_body=_steer(steered)
    )
    assert _ids(got.choices[0]) == want
    for t in (0.7, 1.5):
        k1 = client.completions.create(
            model=srv.model,
            prompt=PROMPT,
            max_tokens=12,
            temperature=t,
            extra_body={"top_k": 1, **_steer(steered)},
        )
        assert _ids(k1.choices[0]) == want
    assert got.choices[0].text == ref[1].decode(want, skip_special_tokens=True)


def test_same_seed_same_tokens_also_with_7_other_requests(client, srv):
    def run(seed, prompt=PROMPT):
        r = client.completions.create(
            model=srv.model, prompt=prompt, max_tokens=16, temperature=1.0, seed=seed
        )
        return _ids(r.choices[0])

    alone = run(1234)
    with ThreadPoolExecutor(8) as pool:
        others = [pool.submit(run, 99 + i, f"other prompt {i} ") for i in range(7)]
        again = pool.submit(run, 1234)
        crowded = again.result(timeout=300)
        [f.result(timeout=300) for f in others]
    assert crowded == alone
    assert len({tuple(run(s)) for s in (1, 2, 3)}) > 1  # the seed matters: sampling is on


def test_n_choices_indexed_and_seeded(client, srv, ref):
    r = client.completions.create(model=srv.model, prompt=PROMPT, max_tokens=8, temperature=1.0, seed=7, n=3)
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert len({tuple(_ids(c)) for c in r.choices}) > 1
    for i, c in enumerate(r.choices):  # choice i is the request with seed + i
        one = client.completions.create(
            model=srv.model, prompt=PROMPT, max_tokens=8, temperature=1.0, seed=7 + i
        )
        assert _ids(one.choices[0]) == _ids(c)
    assert r.usage.completion_tokens == sum(len(_ids(c)) for c in r.choices)
    assert r.usage.prompt_tokens == len(ref[1](PROMPT)["input_ids"])


def test_stop_string_cuts_text_and_stops(client, srv, ref):
    full = (
        client.completions.create(model=srv.model, prompt=PROMPT, max_tokens=20, temperature=0)
        .choices[0]
        .text
    )
    assert len(full) >= 6
    stop = full[3:5]
    got = client.completions.create(
        model=srv.model, prompt=PROMPT, max_tokens=20, temperature=0, stop=[stop, "\x00zz"]
    )
    c = got.choices[0]
    assert c.finish_reason == "stop" and c.text == full[: full.index(stop)]
    assert got.usage.completion_tokens < 20
    chunks = list(
        client.completions.create(
            model=srv.model, prompt=PROMPT, max_tokens=20, temperature=0, stop=stop, stream=True
        )
    )
    assert "".join(ch.choices[0].text for ch in chunks) == c.text
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("steered", [False, True])
def test_logprobs_equal_log_softmax_of_a_direct_forward(client, srv, ref, steered):
    model, tok, _, plan = ref
    r = client.completions.create(
        model=srv.model, prompt=PROMPT, max_tokens=6, temperature=0, logprobs=3, extra_body=_steer(steered)
    )
    c = r.choices[0]
    n = len(tok(PROMPT)["input_ids"])
    if steered:
        # steering positions depend on where the prompt ends, so the reference is HF generate
        # under steerfast.patch: each step's logits are a forward of that same prefix
        x = torch.tensor([tok(PROMPT)["input_ids"]])
        kw = dict(
            max_new_tokens=len(_ids(c)), do_sample=False, output_logits=True, return_dict_in_generate=True
        )
        with torch.no_grad(), steerfast.patch(model, plan):
            out = model.generate(x, attention_mask=torch.ones_like(x), pad_token_id=0, **kw)
        assert out.sequences[0, n:].tolist() == _ids(c)
        logp = torch.log_softmax(torch.cat([lg.float() for lg in out.logits]), -1)
        logp = torch.cat([torch.zeros(n - 1, logp.shape[-1]), logp])  # row n-1+i: token i
    else:
        x = torch.tensor([tok(PROMPT)["input_ids"] + _ids(c)])
        with torch.no_grad():
            logp = torch.log_softmax(model(x).logits[0].float(), -1)
    for i, t in enumerate(_ids(c)):
        assert abs(c.logprobs.token_logprobs[i] - float(logp[n - 1 + i, t])) <= 1e-4
        best = torch.topk(logp[n - 1 + i], 3)
        # completions' top_logprobs is a {token text: logprob} map, best first: two ids with one
        # text share a key, the better one's
        want = {}
        for v, t in zip(best.values.tolist(), best.indices.tolist()):
            want.setdefault(tok.decode([t]), v)
        got = c.logprobs.top_logprobs[i]
        assert got.keys() == want.keys() and list(got.values()) == pytest.approx(
            list(want.values()), abs=1e-4
        )
    assert c.logprobs.tokens == [tok.decode([t]) for t in _ids(c)]
    assert c.logprobs.text_offset[0] == 0
    chat = client.chat.completions.create(
        model=srv.model,
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=4,
        temperature=0,
        logprobs=True,
        top_logprobs=2,
    )
    content = chat.choices[0].logprobs.content
    assert len(content) == len(_ids(chat.choices[0])) and all(len(e.top_logprobs) == 2 for e in content)
    assert all(e.bytes == list(e.token.encode()) for e in content)


def test_logprobs_above_5_is_a_400(client, srv):
    with pytest.raises(openai.BadRequestError, match="logprobs"):
        client.completions.create(model=srv.model, prompt=PROMPT, max_tokens=2, logprobs=6)
    with pytest.raises(openai.BadRequestError, match="top_logprobs"):
        client.chat.completions.create(
            model=srv.model,
            messages=[{"role": "user", "content": "x"}],
            max_tokens=2,
            logprobs=True,
            top_logprobs=6,
        )


def test_include_usage_is_the_last_chunk(client, srv):
    chunks = list(
        client.chat.completions.create(
            model=srv.model,
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=5,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 5
    assert all(ch.usage is None for ch in chunks[:-1])
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks[:-1])
    full = client.chat.completions.create(
        model=srv.model, messages=[{"role": "user", "content": "hi"}], max_tokens=5, temperature=0
    )
    assert text == full.choices[0].message.content and full.usage.total_tokens == full.usage.prompt_tokens + 5


def test_max_tokens_defaults_to_the_server_limit_not_16(client, srv):
    r = client.completions.create(model=srv.model, prompt=PROMPT, temperature=0, extra_body={"stop": None})
    assert r.usage.completion_tokens == 24 or r.choices[0].finish_reason == "stop"


def test_unknown_model_is_404_model_not_found(client, srv):
    with pytest.raises(openai.NotFoundError) as e:
        client.completions.create(model="gpt-4", prompt=PROMPT, max_tokens=2)
    assert e.value.body["code"] == "model_not_found"


# every field the old server ignored: (endpoint, field, value, works) — works: 200 and the
# field did what it says; otherwise 400 naming the field
FIELDS = [
    ("completions", "stop", ["xyz"], True),
    ("completions", "logprobs", 2, True),
    ("completions", "echo", True, True),
    ("completions", "suffix", "tail", False),
    ("completions", "presence_penalty", 0.5, False),
    ("completions", "frequency_penalty", 0.5, False),
    ("completions", "logit_bias", {"5": 10}, False),
    ("completions", "best_of", 3, False),
    ("completions", "user", "alice-42", True),
    ("completions", "seed", 5, True),
    ("completions", "n", 2, True),
    ("completions", "min_tokens", 3, False),
    ("chat", "response_format", {"type": "json_object"}, False),
    ("chat", "tools", [{"type": "function", "function": {"name": "f", "parameters": {}}}], False),
    ("chat", "tool_choice", "auto", False),
    ("chat", "presence_penalty", 1.0, False),
    ("chat", "frequency_penalty", -1.0, False),
    ("chat", "logit_bias", {"5": -100}, False),
    ("chat", "user", "bob-7", True),
    ("chat", "logprobs", True, True),
    ("chat", "max_completion_tokens", 3, True),
    ("chat", "metadata", {"k": "v"}, False),
    ("chat", "parallel_tool_calls", True, False),
    ("chat", "echo", True, False),
    ("chat", "repetition_penalty", 1.1, False),
]


@pytest.mark.parametrize("endpoint,name,value,works", FIELDS, ids=[f"{e}-{n}" for e, n, _, _ in FIELDS])
def test_every_field_works_or_is_a_400_naming_it(srv, endpoint, name, value, works):
    if endpoint == "chat":
        url, body = "/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}
    else:
        url, body = "/completions", {"prompt": PROMPT}
    body = {"model": srv.model, "max_tokens": 4, "temperature": 0, **body, name: value}
    if name == "max_completion_tokens":
        del body["max_tokens"]
    r = httpx.post(srv.url + url, json=body, timeout=120)
    if not works:
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert name in err["message"] and err["param"] == name and err["type"] == "invalid_request_error"
        return
    assert r.status_code == 200, r.text
    out = r.json()
    c = out["choices"][0]
    if name == "logprobs":
        lp = c["logprobs"]
        assert (len(lp["content"]) if endpoint == "chat" else len(lp["tokens"])) == len(c["token_ids"])
    elif name == "echo":
        plain = httpx.post(srv.url + url, json={**body, "echo": False}, timeout=120).json()
        assert c["text"] == PROMPT + plain["choices"][0]["text"]
    elif name == "n":
        assert [x["index"] for x in out["choices"]] == [0, 1]
    elif name == "max_completion_tokens":
        assert out["usage"]["completion_tokens"] == 3
    elif name == "user":
        assert f"user={value}" in srv.log()
    elif name == "seed":
        again = httpx.post(srv.url + url, json={**body, "temperature": 1.0}, timeout=120).json()
        assert (
            again["choices"][0]["token_ids"]
            == httpx.post(srv.url + url, json={**body, "temperature": 1.0}, timeout=120).json()["choices"][0][
                "token_ids"
            ]
        )
    elif name == "stop":
        assert c["finish_reason"] == "length"  # "xyz" never appears in 4 tokens of this model


ERRORS = [
    ({"prompt": PROMPT, "temperature": 3}, 400, "temperature"),
    ({"prompt": PROMPT, "top_p": 0}, 400, "top_p"),
    ({"prompt": PROMPT, "n": 0}, 400, "n"),
    ({"prompt": PROMPT, "stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
    ({"prompt": PROMPT, "max_tokens": 25}, 400, "max_tokens"),
    ({"prompt": PROMPT, "stream_options": {"include_usage": True}}, 400, "stream_options"),
    ({"prompt": 5}, 400, "prompt"),
    ({"prompt": PROMPT, "steering": [{"plan": "nope"}]}, 404, "steering"),
]


@pytest.mark.parametrize("body,status,param", ERRORS, ids=[e[2] for e in ERRORS])
def test_errors_are_openai_shaped(srv, body, status, param):
    r = httpx.post(srv.url + "/completions", json=body, timeout=60)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["param"] == param and err["message"]


def test_a_failing_step_is_a_json_500_and_serving_goes_on(client, srv):
    r = httpx.post(srv.url + "/completions", json={"prompt": FAULT_PROMPT, "max_tokens": 3}, timeout=120)
    assert r.status_code == 500, r.text
    assert r.json()["error"]["type"] == "server_error" and "injected" in r.json()["error"]["message"]
    assert httpx.get(srv.base + "/health", timeout=10).status_code == 200
    assert (
        client.completions.create(model=srv.model, prompt=PROMPT, max_tokens=3).usage.completion_tokens >= 1
    )
    regs = srv.settled_registrations()  # the failed request left nothing in the engine's tables
    assert not any(regs.values()), regs


def _stream_with_a_fault_joining(srv) -> tuple[list[str], bool]:
    """(data events, whether the fault request was sent while the stream was still running)."""
    body = {"prompt": PROMPT, "max_tokens": 24, "temperature": 0, "stream": True}
    with httpx.stream("POST", srv.url + "/completions", json=body, timeout=120) as resp:
        assert resp.status_code == 200
        lines = resp.iter_lines()
        events = []
        for line in lines:
            if line.startswith("data: "):
                events.append(line[6:])
                break
        joined = events[-1] != "[DONE]"
        with ThreadPoolExecutor(1) as pool:
            bad = {"prompt": FAULT_PROMPT, "max_tokens": 2}
            pool.submit(httpx.post, srv.url + "/completions", json=bad, timeout=120)
            events += [line[6:] for line in lines if line.startswith("data: ")]
    return events, joined


def test_a_failure_mid_stream_sends_an_error_event_then_done(client, srv):
    """A stream is running; a request whose prompt trips the fault joins its batch: the step
    holding both raises, so the stream ends with an `error` event and `[DONE]` (a stream that
    finished before the faulty request was scheduled is retried: the race is the test's)."""
    for _ in range(8):
        events, joined = _stream_with_a_fault_joining(srv)
        assert events[-1] == "[DONE]"
        if '"error"' in events[-2]:
            break
    assert '"error"' in events[-2] and "injected" in events[-2], events[-3:]
    assert len(events) >= 3  # text came before the error: it was mid-stream
    with pytest.raises(openai.APIError, match="injected"):  # the official client raises on it
        for _ in range(8):
            for _chunk in client.completions.create(
                model=srv.model, prompt=FAULT_PROMPT, max_tokens=2, stream=True
            ):
                pass
    assert client.completions.create(model=srv.model, prompt=PROMPT, max_tokens=2).choices[0].text is not None
    regs = srv.settled_registrations()  # failed mid-stream, or left by the client: nothing stays
    assert not any(regs.values()), regs


def test_streamed_n_choices_equal_the_non_streamed_ones(client, srv):
    kw = dict(model=srv.model, prompt=PROMPT, max_tokens=10, temperature=1.0, seed=11, n=2)
    full = client.completions.create(**kw)
    text, ids, reasons = {0: "", 1: ""}, {0: [], 1: []}, {}
    chunks = list(client.completions.create(**kw, stream=True, stream_options={"include_usage": True}))
    for ch in chunks[:-1]:
        (c,) = ch.choices
        text[c.index] += c.text
        ids[c.index] += c.model_extra["token_ids"]
        if c.finish_reason:
            reasons[c.index] = c.finish_reason
    for c in full.choices:
        assert (text[c.index], ids[c.index], reasons[c.index]) == (c.text, _ids(c), c.finish_reason)
    assert chunks[-1].usage.completion_tokens == full.usage.completion_tokens
