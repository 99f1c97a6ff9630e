# warroom — `make demo` and `make test` bootstrap everything they need on a fresh clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.bootstrap-stamp
export PYTHONDONTWRITEBYTECODE :=
export UV_COMPILE_BYTECODE := 1

.PHONY: demo demo-good demo-flagger demo-prometheus test test-fast mutate test-repeat test-under-load faults bench snapshots lint prometheus clean

# The venv is rebuilt when pyproject.toml changes (scripts/bootstrap: uv when it can be had from
# the package registry, else pip; each step printed with its elapsed time).
$(STAMP): pyproject.toml scripts/bootstrap
	@scripts/bootstrap $(VENV)
	@touch $(STAMP)

bootstrap: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/warroom demo --scenario $${SCENARIO:-bad}

demo-good: $(STAMP)
	$(VENV)/bin/warroom demo --scenario good

# The demo with Flagger's manual gates served from the record by `warroom gate` (a simulated
# Flagger calls them; a / x / R open them) and a Statuspage stand-in that `s` posts to.
demo-flagger: $(STAMP)
	$(VENV)/bin/warroom demo --flagger --status-page --scenario $${SCENARIO:-bad}

# The demo through a real local Prometheus that scrapes the simulator (started and stopped here).
demo-prometheus: $(STAMP)
	scripts/demo-prometheus

# The whole suite. Prometheus, PostgreSQL and Chromium (Debian's packages) are installed when
# missing and we are root (CI).
test: $(STAMP)
	@scripts/ensure-prometheus >/dev/null 2>&1 || echo "note: prometheus not installed; its integration tests will say they were skipped (they fail under CI=true)"
	@scripts/ensure-postgresql >/dev/null 2>&1 || echo "note: PostgreSQL not installed; the store tests on PostgreSQL will say they were skipped (they fail under CI=true)"
	@scripts/ensure-chromium >/dev/null 2>&1 || echo "note: chromium not installed; the browser tests of warroom serve will say they were skipped (they fail under CI=true)"
	@command -v tmux >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq tmux >/dev/null 2>&1; } || true
	$(PY) -m ruff check .
	$(PY) -m mypy console widgets adapters
	$(PY) -m pytest -q -p no:cacheprovider

# Timing check: tests/app REPEAT times (default 5), then the whole suite with every core busy.
test-repeat: $(STAMP)
	scripts/test-repeat $${REPEAT:-5}

# `make test` TIMES times in a row (default 3) while other processes keep every core busy.
test-under-load: $(STAMP)
	@for i in $$(seq $${TIMES:-3}); do \
		echo "test-under-load: run $$i of $${TIMES:-3}"; \
		scripts/under-load $(MAKE) --no-print-directory test || { echo "test-under-load: run $$i FAILED"; exit 1; }; \
	done; echo "test-under-load: $${TIMES:-3} runs passed"

# The fault suite's long version (tests/faults; `make test` runs its short version): every fault
# on every adapter call, every hostile string through the real command, every broken config
# through the real command, 30 racing commanders. Ends with the counts (what must be 0 is 0).
faults: $(STAMP)
	WARROOM_FAULTS=long $(PY) -m pytest -q -p no:cacheprovider tests/faults

test-fast: $(STAMP)
	$(PY) -m pytest -q -x -m "not prometheus and not tmux"

# Mutation testing of the rules (policy, guardrails, chain verification) against tests/rules:
# scores per module, prints the survivors; every survivor is killed or explained in
# tests/MUTANTS.md. Not part of `make test` (minutes, not seconds). `scripts/mutate --report`
# re-reads the last run.
mutate: $(STAMP)
	$(PY) scripts/mutate

snapshots: $(STAMP)
	$(PY) -m pytest tests/app -q --snapshot-update

# Every performance goal, measured on the real program beside a baseline from the same run: a table
# on stdout and bench-results.json (tests/benchmarks/README.md). At most 10 minutes. A subset:
# `make bench ONLY=startup_ratio,exports` (figure or group names; `$(PY) -m tests.benchmarks.run --list`).
bench: $(STAMP)
	@scripts/ensure-prometheus >/dev/null 2>&1 || echo "note: prometheus not installed; guardrail_cycle_vs_slowest_ratio will say it was skipped"
	$(PY) -m tests.benchmarks.run $(if $(ONLY),--only '$(ONLY)')

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy console widgets adapters
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache mutants
