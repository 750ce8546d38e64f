"""The playground page in a real headless Chromium (Debian's chromium via Playwright; the
`make browser` target installs both — missing, this test fails, it does not skip): type a
prompt, set the slider, generate; both columns stream; the steered column's text equals the
API's steered completion for the same seed, and its tokens carry the monitor's colours and
readings; without the key the API answers 401 and the page shows it."""

from pathlib import Path

import httpx
import pytest
import torch
from helpers import required
from playground_driver import connect, generate, launch

from steerfast import Monitor, save_monitors
from steerfast.plan import Intervention, SteeringPlan

KEY = "browser-test-key"


@pytest.fixture(scope="module")
def server(start_server, tiny_model_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("playground")
    g = torch.Generator().manual_seed(3)
    plan = SteeringPlan(
        [Intervention(0, "mlp.out", "add", torch.randn(64, generator=g), "from_prompt_end", 2.0)], "caa"
    )
    save_monitors(folder / "caa.safetensors", [Monitor(2, torch.randn(64, generator=g), "tone")], plan=plan)
    return start_server(
        "--model",
        str(tiny_model_path),
        "--max-tokens",
        "32",
        "--api-key",
        KEY,
        "--plan",
        f"caa={folder / 'caa.safetensors'}",
    )


def _api(server, prompt, steering, seed, temperature, max_tokens):
    model = httpx.get(server.url + "/models", headers={"Authorization": f"Bearer {KEY}"}).json()["data"][0][
        "id"
    ]
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "seed": seed,
        "monitors": ["tone"],
    }
    if steering:
        body["steering"] = steering
    r = httpx.post(
        server.url + "/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=120
    )
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]


def test_playground_in_chromium(server, tmp_path):
    assert Path("/usr/bin/chromium").exists(), "Debian's chromium is not installed: run `make browser`"
    sync_playwright = required("playwright.sync_api", "`make browser` installs it").sync_playwright
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(server.base + "/playground")
            # no key: the page loads (static shell), every API call it makes is refused
            page.click("#connect")
            page.wait_for_selector("#error:not([hidden])")
            assert "401" in page.inner_text("#error")
            page.click("#generate")
            page.wait_for_selector("body[data-failed='1']", timeout=60_000)
            assert "401" in page.inner_text("#error")
            assert page.inner_text("#text-steered") == ""
            page.fill("#api-key", "wrong")
            page.click("#connect")
            page.wait_for_function("document.getElementById('error').textContent.includes('wrong API key')")

            connect(page, KEY)
            assert "caa" in page.inner_text("#inspect-text")
            args = dict(prompt="the cat sat on", seed=11, temperature=0.9, max_tokens=12)
            cols = generate(page, plan="caa", strength=6.0, monitor="tone", **args)
            page.screenshot(path=str(tmp_path / "playground.png"), full_page=True)
        finally:
            browser.close()
    steered = _api(
        server, args["prompt"], [{"plan": "caa", "strength": 6.0}], args["seed"], args["temperature"], 12
    )
    plain = _api(server, args["prompt"], None, args["seed"], args["temperature"], 12)
    assert cols["steered"]["text"] == steered["text"]
    assert cols["unsteered"]["text"] == plain["text"]
    assert steered["text"] != plain["text"] or steered["monitors"] != plain["monitors"]
    spans = cols["steered"]["spans"]
    readings = steered["monitors"]["tone"]
    assert len(readings) == len(steered["token_ids"]) >= 1
    coloured = [s for s in spans if s["reading"] is not None]
    assert coloured and all(s["colour"].startswith("rgba(") for s in coloured)
    # one span per streamed token here: the page's readings are the API's, rounded to 4 places
    assert [float(s["reading"]) for s in coloured] == pytest.approx(readings, abs=1e-3)
    assert cols["steered"]["plot_points"] == len(readings)
