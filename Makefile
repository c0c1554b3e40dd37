# Set-up and everyday commands. Every target creates .venv (Python 3.11) on first use and
# reinstalls only when setup.py or constraints.txt changed.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATA_DIR ?= data/synthetic
OUTPUT_DIR ?= output

export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: install demo test lint format bench bench-all clean

install: $(STAMP)

$(STAMP): setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m lavis_syncmask.cli.demo --data-dir $(DATA_DIR) --output-dir $(OUTPUT_DIR)/demo

# Every Python file of the project; tests/test_lint_scope.py fails if ruff skips one of them.
LINT_PATHS := lavis_syncmask lavis_syncmask_hook.py tests benchmarks setup.py

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

format: $(STAMP)
	$(VENV)/bin/ruff format $(LINT_PATHS)
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)

test: lint
	$(PY) -m pytest -q tests

# SyncMask against LAVIS's ALBEF / BLIP and ablations (benchmarks/compare.py): the full matrix
# (83 min on 2 cores for a whole run; on a machine 1.8x slower, 18 runs took 113 min and the
# committed matrix's 15 curriculum runs 118 min, so about 3 h for all 27), or QUICK=1 (12 steps,
# same code; 9 min 28 s on that slower machine). Both print the table; the full matrix resumes
# from its committed runs.
bench: $(STAMP)
	$(PY) benchmarks/compare.py $(if $(QUICK),--quick,)

# The component benchmarks (training step, sampler, retrieval, generator).
bench-all: $(STAMP)
	for script in benchmarks/bench_*.py; do $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) $(OUTPUT_DIR) $(DATA_DIR)
