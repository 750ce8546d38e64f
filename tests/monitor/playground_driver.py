"""Drives the playground page in a real headless Chromium (Debian's /usr/bin/chromium through
Playwright for Python; never `playwright install`). Used by test_playground_browser.py and by
scripts/playground_screenshot.py (as the package tests.monitor.playground_driver)."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)


def set_value(page, selector: str, value) -> None:
    """Set an input's value as a user would (range sliders included) and fire input/change."""
    page.eval_on_selector(
        selector,
        "(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true}));"
        " el.dispatchEvent(new Event('change', {bubbles: true})); }",
        str(value),
    )


def connect(page, key: str) -> None:
    page.fill("#api-key", key)
    page.click("#connect")
    page.wait_for_selector("body[data-connected='1']", timeout=60_000)


def generate(
    page,
    prompt: str,
    plan: str,
    strength: float,
    monitor: str,
    seed: int,
    temperature: float,
    max_tokens: int,
) -> dict:
    """Fill the form, click Generate, wait for both columns; their text and token spans."""
    page.fill("#prompt", prompt)
    page.select_option("#plan", plan)
    set_value(page, "#strength", strength)
    page.select_option("#monitor", monitor)
    set_value(page, "#seed", seed)
    set_value(page, "#temperature", temperature)
    set_value(page, "#max-tokens", max_tokens)
    runs = int(page.evaluate("Number(document.body.dataset.runs || 0)")) + 1
    page.click("#generate")
    for col in ("unsteered", "steered"):
        page.wait_for_selector(f"#col-{col}[data-done='{runs}']", timeout=300_000)
    out = {}
    for col in ("unsteered", "steered"):
        out[col] = {
            "text": page.eval_on_selector(f"#text-{col}", "el => el.dataset.text"),
            "spans": page.eval_on_selector_all(
                f"#text-{col} .tok",
                "els => els.map(e => ({text: e.textContent, reading: e.dataset.reading,"
                " colour: getComputedStyle(e).backgroundColor}))",
            ),
            "plot_points": page.eval_on_selector(
                f"#plot-{col} polyline", "el => el.getAttribute('points').trim().split(' ').length"
            ),
        }
    return out
