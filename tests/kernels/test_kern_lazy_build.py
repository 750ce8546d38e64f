"""The C++ kernels build on first use, not at import, and recover from a killed build (stale
lock), a damaged cached library, and warnings-as-errors. Each case runs in a fresh process
with its own STEERFAST_CACHE (a copy of this process's verified build, so nothing compiles)."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from steerfast.ops import library

REPO = Path(__file__).resolve().parents[2]

FIRST_CALL = """
import torch
import steerfast.ops as ops
from steerfast.ops import library, reference
y = torch.randn(4, 8); s = torch.tensor([0, -1, 1, 0]); m = torch.rand(2, 8); d = torch.tensor([1.0, 2.0])
a, b = y.clone(), y.clone()
ops.steer_rows_(a, s, m, d, None, None)
reference.steer_rows_ref_(b, s, m, d, None, None)
assert torch.equal(a, b)
print("FUSED" if library.fused_available() else "REFERENCE", library.fallback_reason())
"""


def _run(code, cache, *flags, timeout=180, **env):
    full = dict(os.environ, STEERFAST_CACHE=str(cache), **env)
    full.pop("STEERFAST_DISABLE_CPP", None) if "STEERFAST_DISABLE_CPP" not in env else None
    return subprocess.run(
        [sys.executable, *flags, "-c", textwrap.dedent(code)],
        cwd=REPO,
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _root() -> Path:
    root = os.environ.get("STEERFAST_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "steerfast"


@pytest.fixture
def cached(tmp_path):
    """(cache root, build dir) holding a copy of this process's good build."""
    if not library.fused_available():  # nothing to copy without a compiler; `make test` (CI) has one
        pytest.skip(f"C++ kernels not built here: {library.fallback_reason()}")
    src = library.build_dir()
    dst = tmp_path / "cache" / src.relative_to(_root())
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".steerfast.lock", "lock"))
    assert library.cached_library_ok(dst)
    return tmp_path / "cache", dst


def test_import_does_not_build(tmp_path):
    code = """
    import time, pathlib, os
    t = time.time()
    import steerfast
    from steerfast.ops import library
    assert not library._cpp_tried, "import tried the C++ build"
    assert not list(pathlib.Path(os.environ["STEERFAST_CACHE"]).rglob("*.so"))
    print(f"IMPORTED {time.time() - t:.1f}")
    """
    res = _run(code, tmp_path / "empty-cache")
    assert res.returncode == 0 and "IMPORTED" in res.stdout, res.stderr[-3000:]
    assert "building" not in res.stderr


def test_cached_build_loads_without_building(cached):
    cache, _ = cached
    res = _run(FIRST_CALL, cache)
    assert res.returncode == 0 and "FUSED" in res.stdout, res.stderr[-3000:]
    assert "building" not in res.stderr


def test_stale_lock_of_a_killed_build_is_removed(cached):
    cache, bdir = cached
    (bdir / "lock").write_text("")  # what torch's FileBaton leaves after a SIGKILL
    res = _run(FIRST_CALL, cache, timeout=120)
    assert res.returncode == 0 and "FUSED" in res.stdout, res.stderr[-3000:]
    assert "stale build lock" in res.stderr
    assert not (bdir / "lock").exists()


def test_truncated_library_is_detected_not_loaded(cached):
    """A truncated .so would SIGBUS the process on load; it is rebuilt instead. With no
    compiler the rebuild fails fast and the reference takes over: the process lives."""
    cache, bdir = cached
    so = bdir / "steerfast_C.so"
    so.write_bytes(so.read_bytes()[: so.stat().st_size // 3])
    res = _run(FIRST_CALL, cache, CXX="/nonexistent/c++")
    assert res.returncode == 0, f"rc {res.returncode}: {res.stderr[-3000:]}"
    assert "does not match its checksum" in res.stderr
    assert "REFERENCE" in res.stdout and "C++ build failed" in res.stdout


def test_warnings_as_errors_import_use_and_reimport(cached):
    cache, _ = cached
    code = (
        FIRST_CALL
        + """
import sys
for k in [k for k in sys.modules if k == "steerfast" or k.startswith("steerfast.")]:
    del sys.modules[k]
import steerfast
"""
        + FIRST_CALL
    )
    res = _run(code, cache, "-W", "error")
    assert res.returncode == 0 and res.stdout.count("FUSED") == 2, res.stderr[-3000:]


def test_warnings_as_errors_with_the_fallback(tmp_path):
    code = (
        "import steerfast\n"
        + FIRST_CALL
        + """
import sys
for k in [k for k in sys.modules if k == "steerfast" or k.startswith("steerfast.")]:
    del sys.modules[k]
import steerfast
print("REIMPORTED")
"""
    )
    res = _run(code, tmp_path / "cache", "-W", "error", STEERFAST_DISABLE_CPP="1")
    assert res.returncode == 0 and "REFERENCE" in res.stdout and "REIMPORTED" in res.stdout, res.stderr[
        -3000:
    ]
    assert "using the torch reference ops" in res.stderr
