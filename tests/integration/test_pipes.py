"""`popularity-contest ... | head`: the reader leaves early, the command exits quietly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from popularity_contest import names
from popularity_contest.collector.store import Store, series_key
from popularity_contest.commands.main import BROKEN_PIPE_STATUS
from tests.envkit import clean_env

COMMAND = [sys.executable, "-m", "popularity_contest"]


@pytest.fixture
def big_store(tmp_path: Path) -> Path:
    """A store with 3000 packages: `report` prints far more than a pipe buffer holds."""
    db = tmp_path / "popcon.sqlite3"
    with Store.open(db) as store:
        store.add(
            {
                series_key(names.IMPORTED_PACKAGE, {"package": f"package{i:05}"}): i + 1.0
                for i in range(3000)
            }
        )
    return db


def test_report_into_head_exits_quietly(big_store: Path) -> None:
    # A real shell pipeline, as an operator types it; PIPESTATUS gives our exit status.
    script = f'"$@" report --db {big_store} 2>"$ERR" | head -n 3; echo "status=${{PIPESTATUS[0]}}"'
    err = big_store.with_suffix(".err")
    done = subprocess.run(
        ["bash", "-c", script, "bash", *COMMAND],
        env=clean_env({"ERR": str(err)}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 4, done.stdout
    assert lines[-1] == f"status={BROKEN_PIPE_STATUS}"
    assert err.read_text() == ""  # no traceback, no "Exception ignored"


@pytest.mark.parametrize("argv", [["--help"], ["report", "--help"], ["--version"]])
def test_a_reader_gone_before_the_first_write_is_no_error(argv: list[str]) -> None:
    # The read end is closed before the interpreter has even started: every write fails,
    # including the final flush of argparse's output on its way out through SystemExit.
    process = subprocess.Popen(
        [*COMMAND, *argv],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()
    stderr = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=60) == BROKEN_PIPE_STATUS
    assert stderr == b""
