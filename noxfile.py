"""The Python matrix (issue 14): the reporter's, activation's and collector's tests under every
Python users run, 3.10 to 3.13, each in a virtual environment of its own (``.nox/``).

Run it with ``make matrix``, which puts the pyenv interpreters of this machine (or CI) on
``PATH`` first. A missing interpreter is skipped with nox's reason on a laptop and is an
error under ``CI=true`` (nox's own rule for ``CI``). The full suite runs on the main
interpreter with ``make test``.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["matrix"]

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

#: Everything that runs inside users' processes, activates it, or receives what it sends.
MATRIX_TESTS = [
    "tests/integration/test_reporter.py",
    "tests/integration/test_reporter_layouts.py",
    "tests/integration/test_reporter_direct.py",
    "tests/unit/test_direct_hook.py",
    "tests/integration/test_activation.py",
    "tests/integration/test_kernels.py",
    "tests/integration/test_no_real_collector.py",
    "tests/unit/test_inprocess_imports.py",
    "tests/unit/test_packages.py",
    "tests/unit/test_startup_shortcut.py",
    "tests/unit/test_wire.py",
    "tests/unit/test_config.py",
    "tests/unit/test_statsd_line.py",
    "tests/unit/test_mapping.py",
    "tests/unit/test_store.py",
    "tests/unit/test_collector_ingest.py",
    "tests/unit/test_serve_settings.py",
    "tests/unit/test_api_bounds.py",
    "tests/integration/test_collector.py",
]


@nox.session(python=PYTHONS)
def matrix(session: nox.Session) -> None:
    """The in-process, activation and collector suites under one Python."""
    session.install("--quiet", "-e", ".[dev]")
    session.run("python", "--version")  # the log names the interpreter actually used
    session.run("python", "-m", "pytest", "-q", *(session.posargs or MATRIX_TESTS))
