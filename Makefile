# The two commands of the quickstart work on a machine with only Python 3 and make:
#   make demo   start the embedded collector, run instrumented Python processes, show counts
#   make test   the whole test suite (what .ci/run runs)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint coverage-html docs dist system-deps bench matrix acceptance acceptance-reduced clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The demo gets its own environment with only what it needs (the collector extra), so
# `make demo` does not wait for the test and lint tools; `make test` keeps using .[dev].
DEMO_VENV := .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed

$(DEMO_STAMP): pyproject.toml
	@echo "demo: installing popularity-contest with its collector extra into $(DEMO_VENV)/ (first run only, about a minute)..."
	@$(PYTHON) -m venv $(DEMO_VENV)
	@$(DEMO_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[collector]'
	@touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(DEMO_VENV)/bin/popularity-contest demo

# The whole default suite, measured: branch coverage of the package, the reporter inside
# the tests' subprocesses included (coverage's `patch = subprocess`), with the floor set in
# pyproject.toml. `make coverage-html` then writes build/coverage/index.html.
test: $(STAMP)
	rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest
	$(BIN)/coverage combine -q
	$(BIN)/coverage report

coverage-html: $(STAMP)
	$(BIN)/coverage html -d build/coverage

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The documentation site, offline, warnings as errors (what CI and Read the Docs build).
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -n -b html docs build/docs/html
	@echo "open build/docs/html/index.html"

# The wheel the install instructions use until this version is on the package index.
# A small venv of its own, so building a wheel never needs the development environment.
dist:
	test -x build/dist-venv/bin/python || $(PYTHON) -m venv build/dist-venv
	rm -f dist/popularity_contest-*.whl
	build/dist-venv/bin/python -m pip wheel --quiet --no-deps --wheel-dir dist .
	@ls dist/popularity_contest-*.whl

# System packages some integration tests use (the real Prometheus, headless Chromium,
# systemd-analyze for the unit in deploy/systemd, Lmod for the HPC module files, gcc for the
# extension-module probe of the kernel tests, JupyterHub's configurable-http-proxy from npm).
# Without them those tests skip on a laptop; under CI=true they fail instead.
system-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus chromium systemd lmod gcc
	# JupyterHub's proxy, for the test that runs the page as a real hub service.
	command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
	command -v configurable-http-proxy >/dev/null || npm install -g --silent configurable-http-proxy

# The reporter's, activation's and collector's tests under every Python users run (3.10-3.13):
# noxfile.py, with the newest pyenv interpreter of each minor version first on PATH. nox
# skips a missing interpreter with its reason locally and fails under CI=true.
matrix: $(STAMP)
	@root=$$(pyenv root 2>/dev/null || echo "$$HOME/.pyenv"); path=; \
	for minor in 10 11 12 13; do \
	  bin=$$(ls -d $$root/versions/3.$$minor*/bin 2>/dev/null | sort -V | tail -n 1); \
	  if [ -n "$$bin" ]; then path="$$path$$bin:"; fi; \
	done; \
	PATH="$$path$$PATH" $(BIN)/nox --sessions matrix

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
	rm -rf $(VENV) $(DEMO_VENV) .nox .venv-matrix build dist .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
