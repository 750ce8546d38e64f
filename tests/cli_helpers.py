"""Running the installed `steerfast` command the way a user does: the helpers of the CLI tests
(tests/cli, tests/tune; tests/ is on pytest's pythonpath: `from cli_helpers import steerfast`)."""

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
