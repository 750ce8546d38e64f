"""The vLLM plugin's tests run in .venv-vllm (vLLM's CPU build; `make test` builds it and
runs them there). In an environment without vLLM this folder holds nothing to collect."""

import importlib.util
import os

if importlib.util.find_spec("vllm") is None:

    def pytest_ignore_collect(collection_path, config):
        """Nothing here runs without vLLM (`make test` runs this folder in .venv-vllm)."""
        return collection_path.suffix == ".py" and collection_path.name.startswith("test_")

else:
    import pytest

    os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")  # only loopback is reachable here
    # tests/conftest.py sets Triton's interpreter for the kernel tests (never collected with
    # vLLM: `make test-vllm` runs only this folder); vLLM must see the CPU as it is
    os.environ.pop("TRITON_INTERPRET", None)

    @pytest.fixture(scope="session")
    def hf():
        from steerfast.models import load

        return load()

    @pytest.fixture(scope="session")
    def hf_dir():
        from steerfast.vllm.export import export_dir

        return str(export_dir())

    @pytest.fixture(scope="session")
    def plan_files(hf, tmp_path_factory):
        from cases import plan_files

        return plan_files(hf, tmp_path_factory.mktemp("plans"))

    @pytest.fixture(scope="session")
    def monitor_paths(hf, tmp_path_factory):
        from monitors_case import monitor_files

        return monitor_files(hf, tmp_path_factory.mktemp("monitors"))
