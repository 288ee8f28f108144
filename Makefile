# The two commands: `make run` (whole system, locally) and `make test` (whole suite, as CI runs it).
# While working: `make test-fast` (unit lane, seconds) and `make lint` (ruff and mypy).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast test-workflow test-integration lint bench bench-cohort bench-api worker clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## run: embedded Temporal dev server + Web UI, worker, API and a demo patient (Ctrl-C stops all)
run: $(STAMP)
	$(BIN)/vcf-server dev

## test: lint and types, then every lane against the real Temporal servers (what CI runs);
##       all of them run, and it fails if any failed (with pytest's own status if the tests did)
test: $(STAMP)
	@status=0; \
	$(MAKE) --no-print-directory lint || status=1; \
	$(BIN)/python -m pytest || status=$$?; \
	exit $$status

## test-fast: the unit lane (pure code, no servers; seconds)
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit

## test-workflow: the workflow lane (the time-skipping test server)
test-workflow: $(STAMP)
	$(BIN)/python -m pytest tests/workflow

## test-integration: the integration lane (dev server, HTTP, processes, databases)
test-integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

## lint: ruff over everything, mypy over the packages in its scope (both run; fails if either failed)
lint: $(STAMP)
	@status=0; \
	$(BIN)/ruff check --output-format concise . || status=1; \
	$(BIN)/mypy || status=1; \
	exit $$status

## bench: the pathway beside a bare-SDK floor of the same shape, one table with every target of
##        issue 9 (time-skipping patient-year, dev server with N=1000 patients, pure core);
##        BENCH_ARGS="--patients 100 --json" to change it
bench: $(STAMP)
	$(BIN)/python bench/pathway_vs_floor.py $(BENCH_ARGS)

## bench-cohort: a year of 10,000 synthetic patients through the pure core on every core
bench-cohort: $(STAMP)
	$(BIN)/vcf cohort seeds/cohorts/default.json --patients 10000 --seed 1 --out out/bench-cohort

## bench-api: a state read while 40 large order Bundles are read (prints latencies and /readyz)
bench-api: $(STAMP)
	$(BIN)/python bench/bundle_reads.py

## worker: the worker process alone, against TEMPORAL_ADDRESS
worker: $(STAMP)
	$(BIN)/vcf-server worker

clean:
	rm -rf $(VENV) .data
