"""The quickstart: `popularity-contest demo` really instruments processes; CI runs `make test`."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from popularity_contest.commands import demo as demo_command
from tests.collectorkit import stop_process
from tests.envkit import REPO, clean_env

REMOVED = re.compile(r"^demo: stopped the collector, removed (\S+)$", re.MULTILINE)


def test_demo_counts_real_processes_per_hub() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "popularity_contest", "demo"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # 11 instrumented processes in two hubs, as counted by the collector and its report.
    assert "11 processes reported; biology 5, physics 6" in out
    # processes, then direct: 0 before the reporter counted direct imports, 4 since (-c code)
    assert re.search(r"^physics\s+yaml\s+4\s+(?:0|4)\s+66\.7%$", out, re.MULTILINE)
    assert 'python_popcon_imported_package_total{namespace="biology",package="yaml"} 3.0' in out
    assert "stopped: 32 lines received, 32 stored, 0 refused" in result.stderr
    # Without a terminal it does not wait for Ctrl-C, and leaves nothing behind.
    assert "Ctrl-C" not in out
    removed = REMOVED.search(out)
    assert removed is not None
    assert not Path(removed.group(1)).exists()


@contextmanager
def waiting_demo() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``demo --wait`` read up to its "press Ctrl-C to stop" line: (process, that line).

    Stopped on the way out if the test has not stopped it.
    """
    with subprocess.Popen(
        [sys.executable, "-m", "popularity_contest", "demo", "--wait"],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as demo:
        try:
            assert demo.stdout is not None
            lines: list[str] = []
            for line in demo.stdout:
                lines.append(line)
                if "press Ctrl-C to stop" in line:
                    break
            ready = lines[-1] if lines else ""
            assert "press Ctrl-C to stop" in ready, "".join(lines)
            yield demo, ready
        finally:
            stop_process(demo)


def test_demo_keeps_the_page_up_until_ctrl_c_then_cleans_up() -> None:
    with waiting_demo() as (demo, ready):
        url = re.search(r"the page is up at (http://127\.0\.0\.1:\d+/)", ready)
        assert url is not None, ready
        with urllib.request.urlopen(url.group(1), timeout=10) as page:  # noqa: S310 - still up
            assert page.status == 200
        demo.send_signal(signal.SIGINT)  # what Ctrl-C sends (here to the demo alone)
        rest, errors = demo.communicate(timeout=60)
    assert demo.returncode == 0
    removed = REMOVED.search(rest)
    assert removed is not None, rest
    assert not Path(removed.group(1)).exists()
    assert "stopped: 32 lines received" in errors  # the collector was stopped


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_demo_stopped_by_a_signal_stops_its_collector_and_removes_its_store(
    stop: signal.Signals,
) -> None:
    with waiting_demo() as (demo, _):
        demo.send_signal(stop)  # a service manager stopping it, a terminal closing
        rest, errors = demo.communicate(timeout=60)
    assert demo.returncode == 128 + stop, errors
    removed = REMOVED.search(rest)
    assert removed is not None, rest
    assert not Path(removed.group(1)).exists()
    assert "stopped: 32 lines received" in errors  # the serve child was stopped, not orphaned
    assert "Traceback" not in errors


def test_demo_restores_the_signal_handlers_it_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    def mine(_signum: int, _frame: object) -> None:
        raise AssertionError("the demo's handler should have run")

    def terminated_meanwhile(_args: argparse.Namespace) -> int:
        os.kill(os.getpid(), signal.SIGTERM)  # a real signal, delivered to this process
        return 0

    monkeypatch.setattr(demo_command, "_run", terminated_meanwhile)
    before = {signum: signal.signal(signum, mine) for signum in demo_command.STOP_SIGNALS}
    try:
        assert demo_command.run(argparse.Namespace(wait=True)) == 128 + signal.SIGTERM
        for signum in demo_command.STOP_SIGNALS:
            assert signal.getsignal(signum) is mine
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def test_readme_quickstart_and_ci_run_the_same_commands() -> None:
    readme = (REPO / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^(make \w+)", quickstart, re.MULTILINE)
    assert commands == ["make demo", "make test"]
    ci = Path(REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.MULTILINE)
    makefile = (REPO / "Makefile").read_text()
    demo = re.search(r"^demo: (.*)\n\t(.*)$", makefile, re.MULTILINE)
    assert demo is not None
    assert demo.group(2).endswith("/popularity-contest demo")
    # The demo installs only the collector extra, into its own environment; tests use dev.
    assert re.search(r"pip install .*'\.\[collector\]'", makefile)
    assert re.search(r"pip install .*'\.\[dev\]'", makefile)
