"""The screenshot of docs/playground.md: `steerfast serve` on the default model with the shipped
tuned sentiment plan and sentiment monitor, the playground driven in headless Chromium (the
driver of tests/monitor), one generation at strength +4, saved to docs/img/playground.png.

    python -m scripts.playground_screenshot [OUT.png]

(from the repo root: the driver is imported as the package tests.monitor.playground_driver,
never by editing sys.path).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
KEY = "screenshot-key"


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    from tests.monitor.playground_driver import connect, generate, launch

    plan = ROOT / "steerfast" / "data" / "tuned" / "smollm2_caa_sentiment.safetensors"
    port = 8765
    cmd = [
        sys.executable,
        "-m",
        "steerfast",
        "serve",
        "--port",
        str(port),
        "--api-key",
        KEY,
        "--plan",
        f"sentiment={plan}",
        "--monitor",
        "sentiment",
        "--threads",
        "2",
    ]
    proc = subprocess.Popen(cmd)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(base + "/playground")
            connect(page, KEY)
            generate(
                page,
                "I think the weather today",
                "sentiment",
                4.0,
                "sentiment",
                seed=1,
                temperature=0.7,
                max_tokens=32,
            )
            page.screenshot(path=str(out), full_page=True)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "img" / "playground.png")
