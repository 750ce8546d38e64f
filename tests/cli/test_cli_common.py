"""Running the installed `steerfast` command the way a user does (helpers for tests/test_cli_*.py),
and the subcommands every release must keep."""

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "steerfast"


def steerfast(*args, timeout=240):
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "steerfast.cli"]
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", TQDM_DISABLE="0")
    return subprocess.run(
        cmd + [str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env
    )


def assert_clean_error(res, *needles):
    """Exit code 2, one line on stderr naming the problem, no traceback."""
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    lines = [l for l in res.stderr.splitlines() if l.strip() and not _progress(l)]
    assert len(lines) == 1, res.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def _progress(line):  # model-loading notes and progress bars precede the error line
    return line.startswith("loading model") or "it/s]" in line or "s/it]" in line or "%|" in line


def test_every_subcommand_is_registered():
    res = steerfast("--help")
    assert res.returncode == 0, res.stderr
    for name in (
        "demo",
        "make",
        "convert",
        "inspect",
        "generate",
        "bench",
        "sadi-eval",
        "sadi-heatmap",
        "laai-eval",
    ):
        assert f"    {name}" in res.stdout, name
    for args in (
        ["make", "caa", "--help"],
        ["bench", "--help"],
        ["sadi-heatmap", "--help"],
        ["laai-eval", "--help"],
        ["demo", "--help"],
    ):
        res = steerfast(*args)
        assert res.returncode == 0 and "usage: steerfast" in res.stdout, (args, res.stderr)


def test_main_is_importable_with_argv():
    from steerfast.cli import build_parser, main

    args = build_parser().parse_args(["inspect", "p.safetensors", "--plot", "x.png"])
    assert args.func.__module__ == "steerfast.cli.inspect_plan" and args.plot == "x.png"
    assert main(["inspect", "/nonexistent/p.safetensors"]) == 2
