# Everything runs from .venv, which is created and installed from pyproject.toml on first use.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-quick lint schema bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# One worker unless MODELGATE_WORKERS says otherwise: the demo serves one person, and one process's
# log reads in order (`modelgate serve` alone starts one worker per core).
run: $(STAMP)
	MODELGATE_WORKERS=$(or $(MODELGATE_WORKERS),1) $(PY) -m app serve

# Two test processes (pytest-xdist, a file's tests in one process): most tests wait on a server,
# a database or a fake upstream, so two halve the suite's time even on two cores.
TEST_PROCESSES ?= 2

test: $(STAMP)
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile --durations=15 $(PYTEST_ARGS)

# The quick subset for development: everything but the slow matrices (CI runs `make test`).
test-quick: $(STAMP)
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile -m 'not slow' $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check app tests examples bench tools
	$(VENV)/bin/ruff format --check app tests examples bench tools
	$(VENV)/bin/mypy

# QUICK=1: a short run (under two minutes).
bench: $(STAMP)
	$(PY) -m bench.run $(if $(QUICK),--quick)

schema: $(STAMP)
	$(PY) -m app export-schema --output schema.graphql

clean:
	rm -rf $(VENV) .data
