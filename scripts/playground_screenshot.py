"""The screenshot of docs/playground.md: `steerfast serve` on the default model with the shipped
tuned sentiment plan and sentiment monitor, the playground driven in headless Chromium (the
driver of tests/monitor), one generation at strength +4, saved to docs/img/playground.png.

    python -m scripts.playground_screenshot [OUT.png]

(from the repo root: the driver and the tests' server launcher are imported as the packages
tests.monitor.playground_driver and tests.serve_proc, never by editing sys.path).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY = "screenshot-key"


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    from tests.monitor.playground_driver import connect, generate, launch
    from tests.serve_proc import RunningServer

    plan = ROOT / "steerfast" / "data" / "tuned" / "smollm2_caa_sentiment.safetensors"
    flags = ["--api-key", KEY, "--plan", f"sentiment={plan}", "--monitor", "sentiment", "--threads", "2"]
    with tempfile.TemporaryDirectory() as tmp:
        server = RunningServer(flags, Path(tmp) / "server.log", env={"OMP_NUM_THREADS": None}, timeout=600)
        try:
            with sync_playwright() as p:
                browser = launch(p)
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                page.goto(server.base + "/playground")
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
            server.stop()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "img" / "playground.png")
