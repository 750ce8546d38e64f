"""Every module of the package imports (a module no test reaches still must: `python -m
steerfast.bench.monitors` once broke on a helper renamed elsewhere). steerfast/vllm needs vLLM:
tests/vllm_plugin/test_plugin_checks.py imports those in .venv-vllm."""

import importlib
import pkgutil

import pytest

import steerfast

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(steerfast.__path__, "steerfast.")
    if not m.name.startswith("steerfast.vllm") and not m.name.endswith("__main__")
)


def test_the_walk_finds_the_package():
    assert len(MODULES) > 100 and "steerfast.bench.monitors" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name):
    importlib.import_module(name)
