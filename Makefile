# The two commands: `make run` (whole system, locally) and `make test` (whole suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench worker clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## run: embedded Temporal dev server + Web UI, worker, API and a demo patient (Ctrl-C stops all)
run: $(STAMP)
	$(BIN)/python -m worker.dev

## test: the whole suite against the real Temporal servers
test: $(STAMP)
	$(BIN)/python -m pytest

## bench: one-year pathway under time-skipping (prints wall time and history size)
bench: $(STAMP)
	$(BIN)/python bench/one_year_pathway.py

## worker: the worker process alone, against TEMPORAL_ADDRESS
worker: $(STAMP)
	$(BIN)/python -m worker.main

clean:
	rm -rf $(VENV) .data
