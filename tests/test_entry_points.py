"""`python -m steerfast`, user-facing help texts, and packaging metadata without warnings."""

import subprocess
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "steerfast", *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )


def test_python_dash_m_steerfast():
    out = _run("--help")
    assert out.returncode == 0, out.stderr
    for command in ("demo", "bench", "sadi-eval", "laai-eval"):
        assert command in out.stdout


def test_bench_help_is_for_users():
    out = _run("bench", "--help")
    assert out.returncode == 0, out.stderr
    assert "--quick" in out.stdout
    for internal in ("lead", "wires it", "cli.py"):
        assert internal not in out.stdout, f"internal note in `steerfast bench --help`: {internal!r}"


def test_pyproject_license_is_spdx_and_setuptools_is_quiet():
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert dist.metadata.license_expression == "Apache-2.0"
    noisy = [str(w.message).splitlines()[0] for w in caught if "license" in str(w.message).lower()]
    assert not noisy, noisy
