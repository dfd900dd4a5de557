# The two commands of the quickstart work on a machine with only Python 3 and make:
#   make demo   start the embedded collector, run instrumented Python processes, show counts
#   make test   the whole test suite (what .ci/run runs)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint system-deps bench clean acceptance acceptance-reduced

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/popularity-contest demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# System packages some integration tests use (the real Prometheus, headless Chromium,
# JupyterHub's configurable-http-proxy from npm).
# Without them those tests skip on a laptop; under CI=true they fail instead.
system-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus chromium
	# JupyterHub's proxy, for the test that runs the page as a real hub service.
	command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
	command -v configurable-http-proxy >/dev/null || npm install -g --silent configurable-http-proxy

# The acceptance test (tests/acceptance, docs/operations/acceptance.md): a real JupyterLab +
# data-science environment from PyPI (cached in .acceptance-cache/), every activation route
# compared with an independent record of each process's imports, then every `unused`
# candidate removed and everything run again. Not part of `make test`.
acceptance: $(STAMP)
	POPCON_ACCEPTANCE=full $(BIN)/python -m pytest tests/acceptance -v -s

# The same, reduced for CI: the `both` route and the default threshold only.
acceptance-reduced: $(STAMP)
	POPCON_ACCEPTANCE=reduced $(BIN)/python -m pytest tests/acceptance -v -s

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
