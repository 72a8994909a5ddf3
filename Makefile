# Two entry points for a fresh machine: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

$(STAMP): setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	# torch first and pinned: an unpinned resolve would pull the CUDA build (gigabytes).
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh $(PY)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) bench/ingest.py
	$(PY) bench/memory.py
	$(PY) bench/scaling.py
	$(PY) bench/dedup.py
	$(PY) bench/index.py
	$(PY) bench/detectors.py
	$(PY) bench/pipeline_scoring.py
	$(PY) bench/stats.py
	$(PY) bench/collapse.py
	# DataTrove side by side, in its own throw-away venv (~/.cache/lowbackground): skipped without a package index
	$(PY) bench/peer_datatrove.py --skip-without-index

clean:
	rm -rf out build *.egg-info
