# The two commands of the quickstart work on a machine with only Python 3 and make:
#   make demo   start the embedded collector, run instrumented Python processes, show counts
#   make test   the whole test suite (what .ci/run runs)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint coverage system-deps bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/popularity-contest demo

test: $(STAMP)
	$(BIN)/python -m pytest

# The default suite under branch coverage, the reporter inside subprocesses included
# (coverage's `patch = subprocess`); fails below the floor in pyproject.toml.
coverage: $(STAMP)
	rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest -q
	$(BIN)/coverage combine -q
	$(BIN)/coverage report

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# System packages some integration tests use (the real Prometheus, headless Chromium,
# systemd-analyze for the unit in deploy/systemd, Lmod for the HPC module files, JupyterHub's configurable-http-proxy from npm).
# Without them those tests skip on a laptop; under CI=true they fail instead.
system-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus chromium systemd lmod
	# JupyterHub's proxy, for the test that runs the page as a real hub service.
	command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
	command -v configurable-http-proxy >/dev/null || npm install -g --silent configurable-http-proxy

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
