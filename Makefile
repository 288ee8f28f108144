# The two commands: `make run` (whole system, locally) and `make test` (whole suite, as CI runs it).
# While working: `make test-fast` (unit lane, seconds) and `make lint` (ruff and mypy).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Our packages, compiled to bytecode before a benchmark as a wheel install compiles them: an
# editable install has none, and with PYTHONDONTWRITEBYTECODE every process compiled every module.
PACKAGES := activities api bench cli cohort pathway security worker workflows

.PHONY: browser run test test-fast test-workflow test-integration lint bench bench-cohort bench-api bench-subscriptions drill worker clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## browser: Debian's Chromium for the browser test (tests/integration/test_ui_decodes.py), which `make test`
##          needs: installed when missing if we are root with apt-get (as CI is), else how to is printed and
##          that test fails naming it. Checked every time (cheap), so a removed chromium comes back.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (Debian's package) for the browser test"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
			|| echo "apt-get could not install chromium: the browser test will fail (the other tests still run)"; \
	else \
		echo "chromium is missing: install Debian's package (sudo apt-get install chromium), or put a"; \
		echo "Chromium named 'chromium' on the PATH; the browser test fails without it"; \
	fi

## run: embedded Temporal dev server + Web UI, worker, API and a demo patient (Ctrl-C stops all)
run: $(STAMP)
	$(BIN)/vcf-server dev

## test: lint and types, then every lane against the real Temporal servers (what CI runs);
##       all of them run, and it fails if any failed (with pytest's own status if the tests did)
test: $(STAMP) browser
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
test-integration: $(STAMP) browser
	$(BIN)/python -m pytest tests/integration

## lint: ruff over everything, mypy over the packages in its scope (both run; fails if either failed)
lint: $(STAMP)
	@status=0; \
	$(BIN)/ruff check --output-format concise . || status=1; \
	$(BIN)/mypy || status=1; \
	exit $$status

## bench: the pathway beside a bare-SDK floor of the same shape, one table with every target of
##        issue 9 (time-skipping patient-year, dev server with N=1000 patients, pure core);
##        BENCH_ARGS="--patients 100 --json" to change it, "--dev-runs 3" for medians of three dev-server runs
bench: $(STAMP)
	$(BIN)/python -m compileall -q -j0 $(PACKAGES)
	$(BIN)/python bench/pathway_vs_floor.py $(BENCH_ARGS)

## bench-cohort: a year of 10,000 synthetic patients through the pure core on every core
bench-cohort: $(STAMP)
	$(BIN)/python -m compileall -q -j0 $(PACKAGES)
	$(BIN)/vcf cohort seeds/cohorts/default.json --patients 10000 --seed 1 --out out/bench-cohort

## bench-api: a state read while 40 large order Bundles are read (prints latencies and /readyz)
bench-api: $(STAMP)
	$(BIN)/python bench/bundle_reads.py

## bench-subscriptions: rest-hook delivery of order changes to a loopback receiver (prints rate and latency)
bench-subscriptions: $(STAMP)
	$(BIN)/python bench/subscription_delivery.py

## drill: the reliability drill: 200 patients through the API while workers are killed, the server restarts
##        and the order book goes away; then nothing lost, doubled or stuck, no 5xx, and a 10,000-request flood
##        (figures in .data/drill/result.json; exits non-zero on any failure)
drill: $(STAMP)
	$(BIN)/vcf-drill --out .data/drill

## worker: the worker process alone, against TEMPORAL_ADDRESS
worker: $(STAMP)
	$(BIN)/vcf-server worker

clean:
	rm -rf $(VENV) .data
	find $(PACKAGES) tests -name __pycache__ -prune -exec rm -rf {} +
