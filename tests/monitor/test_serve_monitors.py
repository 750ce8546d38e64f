"""Monitors on a real `steerfast serve` process (official openai client): per-request
`monitors` -> `choices[i].monitors`, equal to a hook oracle (HF generate of the request alone,
a pre-hook on the decoder layer, dot product by hand) <= 1e-4 for every generated token, streamed
and not, steered and not, requests with different monitors in flight together; bad or
unknown names -> 400; a Prometheus histogram per monitor."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch

import steerfast
from steerfast import Monitor, save_monitors
from steerfast.plan import Intervention, SteeringPlan
from steerfast.testing import tiny_model

KEY = "monitor-test-key"
NEW = 8
TOL = 1e-4
PROMPTS = ["the cat sat on", "hello there", "a b c", "steering!"]


def _monitors():
    g = torch.Generator().manual_seed(5)
    return [
        Monitor(1, torch.randn(64, generator=g), "m1", 0.5),
        Monitor(2, torch.randn(64, generator=g), "m2"),
    ]


def _plan():
    g = torch.Generator().manual_seed(9)
    return SteeringPlan(
        [Intervention(0, "mlp.out", "add", torch.randn(64, generator=g), "from_prompt_end", 3.0)], "caa"
    )


@pytest.fixture(scope="module")
def server(start_server, tiny_model_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("monitors")
    m1, m2 = _monitors()
    m1.save(folder / "m1.safetensors")
    save_monitors(folder / "caa.safetensors", [m2], plan=_plan())  # a plan file carrying m2
    return start_server(
        "--model",
        str(tiny_model_path),
        "--max-tokens",
        "32",
        "--api-key",
        KEY,
        "--monitor",
        str(folder / "m1.safetensors"),
        "--plan",
        f"caa={folder / 'caa.safetensors'}",
    )


def _oracle(prompt_ids, n, steered, names):
    """Readings of HF generate of one request alone (greedy, exactly n tokens)."""
    model = tiny_model("llama")
    mons = {m.name: m for m in _monitors()}
    seen = {1: [], 2: []}

    def hook(layer):
        def pre(mod, args, kwargs):
            h = args[0] if args else kwargs["hidden_states"]
            seen[layer].append(h[0, -1].double().clone())

        return pre

    handles = [model.model.layers[k].register_forward_pre_hook(hook(k), with_kwargs=True) for k in (1, 2)]
    x = torch.tensor([prompt_ids])
    kw = dict(max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)
    try:
        with torch.no_grad():
            if steered:
                with steerfast.patch(model, _plan()):
                    out = model.generate(x, attention_mask=torch.ones_like(x), **kw)
            else:
                out = model.generate(x, attention_mask=torch.ones_like(x), **kw)
    finally:
        for h in handles:
            h.remove()
    readings = {
        name: [
            float(seen[mons[name].layer][t] @ mons[name].vector.double() + mons[name].bias) for t in range(n)
        ]
        for name in names
    }
    return out[0, len(prompt_ids) :].tolist(), readings


def _encode(prompt):
    from steerfast.testing import tiny_tokenizer

    return tiny_tokenizer()(prompt)["input_ids"]


def _request(client, prompt, names, steered, stream=False):
    extra = {"monitors": names}
    if steered:
        extra["steering"] = [{"plan": "caa"}]
    return client.completions.create(
        model=client._model_name,
        prompt=prompt,
        max_tokens=NEW,
        temperature=0,
        stream=stream,
        extra_body=extra,
    )


def _client(server):
    c = server.client(api_key=KEY)
    c._model_name = httpx.get(server.url + "/models", headers={"Authorization": f"Bearer {KEY}"}).json()[
        "data"
    ][0]["id"]
    return c


def _close(got, want):
    assert len(got) == len(want)
    assert max(abs(a - b) for a, b in zip(got, want)) <= TOL


def test_readings_equal_the_oracle_mixed_requests(server):
    client = _client(server)
    cases = [
        (PROMPTS[0], ["m1"], False),
        (PROMPTS[1], ["m1", "m2"], True),
        (PROMPTS[2], ["m2"], False),
        (PROMPTS[3], ["m2", "m1"], True),
    ]
    with ThreadPoolExecutor(len(cases)) as pool:
        futures = [pool.submit(_request, client, p, names, s) for p, names, s in cases]
        plain = pool.submit(client.completions.create, model=client._model_name, prompt="plain", max_tokens=4)
        results = [f.result(timeout=300) for f in futures]
        assert "monitors" not in (plain.result(timeout=300).choices[0].model_extra or {})
    for (prompt, names, steered), r in zip(cases, results):
        extra = r.choices[0].model_extra
        ids = extra["token_ids"]
        want_ids, want = _oracle(_encode(prompt), len(ids), steered, names)
        assert ids == want_ids
        assert list(extra["monitors"]) == names
        for n in names:
            _close(extra["monitors"][n], want[n])


def test_streamed_readings_per_chunk(server):
    client = _client(server)
    for steered in (False, True):
        chunks = list(_request(client, PROMPTS[0], ["m1", "m2"], steered, stream=True))
        ids, got = [], {"m1": [], "m2": []}
        for c in chunks:
            for ch in c.choices:
                extra = ch.model_extra or {}
                ids += extra.get("token_ids") or []
                mons = extra.get("monitors")
                if mons is not None:
                    assert len(mons["m1"]) == len(extra.get("token_ids") or [])
                    for n in got:
                        got[n] += mons[n]
        want_ids, want = _oracle(_encode(PROMPTS[0]), len(ids), steered, ["m1", "m2"])
        assert ids == want_ids
        for n in got:
            _close(got[n], want[n])


def test_bad_monitors_are_400(server):
    h = {"Authorization": f"Bearer {KEY}"}
    model = _client(server)._model_name
    for field, code in (
        (["nope"], "unknown_monitor"),
        ("m1", "invalid_monitors"),
        (["m1", "m1"], "invalid_monitors"),
    ):
        r = httpx.post(
            server.url + "/completions",
            headers=h,
            timeout=60,
            json={"model": model, "prompt": "x", "max_tokens": 2, "monitors": field},
        )
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == code
        assert r.json()["error"]["param"] == "monitors"


def test_histogram_per_monitor(server):
    _request(_client(server), PROMPTS[1], ["m1", "m2"], False)
    text = httpx.get(server.base + "/metrics", headers={"Authorization": f"Bearer {KEY}"}, timeout=30).text
    for name in ("m1", "m2"):
        count = [
            ln
            for ln in text.splitlines()
            if ln.startswith(f'steerfast_monitor_reading_count{{monitor="{name}"}}')
        ]
        assert count and float(count[0].split()[-1]) >= NEW


def test_playground_info_is_behind_the_key(server):
    assert httpx.get(server.url + "/playground/info", timeout=30).status_code == 401
    info = httpx.get(
        server.url + "/playground/info", headers={"Authorization": f"Bearer {KEY}"}, timeout=30
    ).json()
    assert [p["name"] for p in info["plans"]] == ["caa"]
    assert info["plans"][0]["method"] == "caa" and info["plans"][0]["layers"] == [0]
    assert sorted(m["name"] for m in info["monitors"]) == ["m1", "m2"]
    page = httpx.get(server.base + "/playground", timeout=30)  # the static shell: no data in it
    assert page.status_code == 200 and "steerfast playground" in page.text and "caa" not in page.text


def test_chunked_prefill_reads_at_the_prompts_last_token(start_server, tiny_model_path, tmp_path_factory):
    """Prompts longer than a step (--max-batch-tokens 8): the first reading is taken in the
    step holding the prompt's last token, the others at each generated token."""
    folder = tmp_path_factory.mktemp("chunked")
    save_monitors(folder / "mons.safetensors", _monitors())
    srv = start_server(
        "--model", str(tiny_model_path), "--max-tokens", "32", "--api-key", KEY,
        "--max-batch-tokens", "8", "--no-prefix-cache", "--monitor", str(folder / "mons.safetensors"),
    )  # fmt: skip
    client = _client(srv)
    long_prompts = ["the quick brown fox jumps over", "a much longer prompt than eight"]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda p: _request(client, p, ["m1", "m2"], False), long_prompts))
    for prompt, r in zip(long_prompts, results):
        extra = r.choices[0].model_extra
        want_ids, want = _oracle(_encode(prompt), len(extra["token_ids"]), False, ["m1", "m2"])
        assert extra["token_ids"] == want_ids
        for n in ("m1", "m2"):
            _close(extra["monitors"][n], want[n])
