# SatCLIP experiment suite. `make repro` runs the pipeline; `make test` runs the tests.
# Both create the environment (.venv, Python 3.12) first when it is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Python 3.12: a working `python3.12`, else pyenv's 3.12 (the pyenv shim needs PYENV_VERSION).
PYTHON312 ?= $(shell if python3.12 -c 'import sys' >/dev/null 2>&1; then echo python3.12; \
	elif command -v pyenv >/dev/null 2>&1 && [ -x "$$(pyenv prefix 3.12 2>/dev/null)/bin/python3.12" ]; then \
	echo "$$(pyenv prefix 3.12)/bin/python3.12"; fi)
# The local mirror of the upstream data files, when this checkout has one beside it.
MIRROR ?= $(if $(wildcard ../shared/geodata/SHA256SUMS),$(abspath ../shared/geodata),)
export SATCLIP_DATA_MIRROR ?= $(MIRROR)
export PATH := $(abspath $(VENV))/bin:$(PATH)
# Overlay for `make repro EXP=experiments/<name>.yaml` (applied with `dvc exp run -S`).
EXP ?=
# Sweep for `make sweep NAME=<name>` / `make compare NAME=<name>` (experiments/sweeps/<name>.yaml).
NAME ?=
SWEEPS = $(basename $(notdir $(wildcard experiments/sweeps/*.yaml)))

.PHONY: help setup test repro figures sweep compare exp bench lint clean
help:  ## list the targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	@test -n "$(PYTHON312)" || { echo "error: Python 3.12 not found (python3.12 or pyenv 3.12)" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON312) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	# GeoCLIP baseline: only the weight file inside the wheel is read (never imported), so its
	# dependencies (transformers, huggingface-hub<2) are not installed
	$(PY) -m pip install --quiet --no-deps geoclip==1.3.0
	@touch $@

setup: $(STAMP)  ## create .venv (Python 3.12) and install the package with dev extras

test: $(STAMP)  ## run the test suite
	$(PY) -m pytest -q

repro: $(STAMP)  ## run the pipeline (dvc repro); EXP=experiments/x.yaml applies an overlay
ifeq ($(EXP),)
	dvc repro
	$(PY) -m satclip.reporting.readme README.md
else
	$(VENV)/bin/satclip check params.yaml "$(EXP)"
	$(VENV)/bin/satclip overlay --run "$(EXP)"
endif

figures: $(STAMP)  ## redraw figures, results/index.html and results/README.md from results on disk (no retraining)
	dvc repro --single-item --force figures

sweep: $(STAMP)  ## run an ablation as DVC experiments: make sweep NAME=legendre [POINTS=l20,l40]
	@test -n "$(NAME)" || { echo "usage: make sweep NAME=<sweep>; sweeps: $(SWEEPS)" >&2; exit 2; }
	$(VENV)/bin/satclip sweep "$(NAME)" $(if $(POINTS),--points "$(POINTS)")

compare: $(STAMP)  ## one table and figure across a finished sweep: make compare NAME=legendre
	@test -n "$(NAME)" || { echo "usage: make compare NAME=<sweep>; sweeps: $(SWEEPS)" >&2; exit 2; }
	$(VENV)/bin/satclip compare "$(NAME)" --publish docs/sweeps
	$(PY) -m satclip.reporting.readme README.md
	dvc repro --single-item --force figures

exp: $(STAMP)  ## every experiment's headline metrics, fitting a terminal (satclip exp; ARGS=... for dvc exp show)
	$(VENV)/bin/satclip exp $(ARGS)

bench: $(STAMP)  ## run every benchmark in benchmarks/ (results under results/bench/)
	@mkdir -p results/bench
	@set -e; for b in benchmarks/bench_*.py; do case $$b in *_gpu.py) echo "== $$b: skipped (needs a GPU: bash benchmarks/gpu_check.sh)"; continue;; esac; echo "== $$b"; $(PY) $$b; done

lint: $(STAMP)  ## ruff
	$(PY) -m ruff check src tests benchmarks

clean:  ## remove caches and pipeline outputs (keeps .venv, the download cache outside the repository and the git-tracked results/metrics)
	rm -rf .pytest_cache .ruff_cache results/notebooks results/bench results/figures results/compare \
		results/index.html results/README.md data/labels data/pretrain
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
