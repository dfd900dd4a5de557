"""Expected failures of the command line end in one line and an exit status, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.envkit import Env, clean_env


@pytest.fixture(scope="module")
def bare_env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    """A venv with this checkout importable but none of the extras installed."""
    return Env(tmp_path_factory.mktemp("bare") / "venv")


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--http", "127.0.0.1:0", "--no-statsd"],
    ],
    ids=["serve"],
)
def test_a_missing_extra_is_one_line_naming_it(
    bare_env: Env, tmp_path: Path, argv: list[str]
) -> None:
    probe = subprocess.run(
        [str(bare_env.python), "-c", "import prometheus_client"],
        capture_output=True,
        check=False,
    )
    assert probe.returncode != 0, "the bare venv must not see prometheus_client"
    done = subprocess.run(
        [str(bare_env.python), "-m", "popularity_contest", *argv, "--db", str(tmp_path / "s")],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"popularity-contest {argv[0]}: needs the collector extra")
    assert lines[0].endswith("pip install 'popularity-contest[collector]'")


def test_serve_refuses_an_environment_that_is_not_an_interpreter(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "popularity_contest",
            "serve",
            "--no-statsd",
            "--http",
            "127.0.0.1:0",
            "--db",
            str(tmp_path / "popcon.sqlite3"),
            "--environment",
            "/nonexistent/python",
        ],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "--environment" in lines[0]
    assert "/nonexistent/python" in lines[0]
    assert not (tmp_path / "popcon.sqlite3").exists()  # refused before opening anything
