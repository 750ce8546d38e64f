"""The repo's top-level kernels/ folder never shadows another distribution's `kernels`
(Hugging Face's hub kernels, which transformers >= 5.25 depends on and imports at import
time), from any working directory, while steerfast's own Triton kernels still import as
`steerfast.kernels`. Each check runs a fresh interpreter from the repo root, where the root
is first on sys.path (as for `python -c`, `python -m pytest` or a script run there)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAKE = "steerfast-test-fake-kernels"


def _run(code: str, extra_path: Path | None = None) -> dict:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def fake_kernels(tmp_path):
    """A regular package `kernels` on sys.path behind the repo root (PYTHONPATH comes after
    the script directory, i.e. after the root, so the root has every chance to shadow it)."""
    pkg = tmp_path / "kernels"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(f"WHO = {FAKE!r}\n")
    return tmp_path


def test_the_top_level_folder_is_not_a_regular_package():
    assert (REPO / "kernels" / "steer_rows.py").is_file()
    assert not (REPO / "kernels" / "__init__.py").exists(), (
        "kernels/__init__.py makes the folder a regular package `kernels` that shadows HF's"
    )


def test_import_kernels_from_the_repo_root_finds_the_other_distribution(fake_kernels):
    got = _run(
        "import json, sys, kernels; "
        "print(json.dumps({'who': getattr(kernels, 'WHO', None), 'file': kernels.__file__, "
        "'root_first': sys.path[0] in ('', __import__('os').getcwd())}))",
        fake_kernels,
    )
    assert got["root_first"], "the check must run with the repo root first on sys.path"
    assert got["who"] == FAKE and got["file"] == str(fake_kernels / "kernels" / "__init__.py")


def test_steerfast_kernels_import_beside_another_kernels(fake_kernels):
    pytest.importorskip("triton")
    got = _run(
        "import json, kernels\n"
        "from steerfast.ops import kernel_modules\n"
        "k = kernel_modules.load()\n"
        "import kernels as again\n"
        "print(json.dumps({'who': again.WHO, 'same': again is kernels, "
        "'names': sorted(m.__name__ for m in k.modules.values()), "
        "'files': sorted(m.__file__ for m in k.modules.values()), "
        "'fns': [callable(k.steer_rows_), callable(k.steer_linear), callable(k.steer_ablate_)]}))",
        fake_kernels,
    )
    assert got["who"] == FAKE and got["same"]
    assert got["names"] == [
        "steerfast.kernels.steer_ablate",
        "steerfast.kernels.steer_linear",
        "steerfast.kernels.steer_rows",
    ]
    kernel_dir = Path(got["files"][0]).parent
    assert kernel_dir in (REPO / "kernels", REPO / "steerfast" / "kernels") or kernel_dir.name == "kernels"
    assert all(Path(f).parent == kernel_dir for f in got["files"])
    assert got["fns"] == [True, True, True]


def test_transformers_imports_a_model_from_the_repo_root():
    """The 5.25 failure: transformers found the repo's kernels/ as `kernels` and imported
    names from it. From the root, a model class imports and the check of HF's kernels sees
    either the real distribution or nothing (never the folder)."""
    got = _run(
        "import json, importlib.util\n"
        "from transformers import LlamaForCausalLM\n"
        "spec = importlib.util.find_spec('kernels')\n"
        "origin = None if spec is None else (spec.origin or list(spec.submodule_search_locations or []))\n"
        "print(json.dumps({'model': LlamaForCausalLM.__name__, 'origin': origin}))"
    )
    assert got["model"] == "LlamaForCausalLM"
    origin = got["origin"]
    if isinstance(origin, str):  # a regular package: must not be ours
        assert not origin.startswith(str(REPO / "kernels")), origin
