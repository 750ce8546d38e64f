"""`steerfast serve --help` lists every flag, each with help text, and docs/serving.md names them."""

import subprocess
import sys
from pathlib import Path

from steerfast.cli import build_parser


def _serve_parser():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices["serve"]


def test_every_serve_flag_has_help_and_is_in_help_output_and_docs():
    flags = [a for a in _serve_parser()._actions if a.option_strings and a.dest != "help"]
    assert len(flags) >= 20
    out = subprocess.run(
        [sys.executable, "-m", "steerfast", "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    docs = (Path(__file__).resolve().parents[2] / "docs" / "serving.md").read_text()
    for action in flags:
        name = action.option_strings[-1]
        assert action.help and action.help.strip(), f"{name} has no help text"
        assert name in out, f"{name} missing from steerfast serve --help"
        assert f"`{name}" in docs, f"{name} is not documented in docs/serving.md"


def test_keys_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("STEERFAST_API_KEY", "from-env")
    monkeypatch.setenv("STEERFAST_ADMIN_KEY", "admin-env")
    args = build_parser().parse_args(["serve"])
    assert (args.api_key, args.admin_key) == ("from-env", "admin-env")
    assert build_parser().parse_args(["serve", "--api-key", "flag"]).api_key == "flag"
