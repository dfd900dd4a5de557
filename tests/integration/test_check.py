"""`popularity-contest check` as a real process: exit codes against live and dead targets."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.collectorkit import Collector
from tests.conftest import require

CHECK_LINE = "python_popcon.check:1|c"
TIMEOUT = 60.0


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON_POPCONTEST_")}
    env.update(extra)
    return env


def check(
    *args: str, env: dict[str, str], prefix: list[str] | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [*(prefix or []), sys.executable, "-m", "popularity_contest", "check", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    return done, time.monotonic() - started


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10.0)
    yield sock
    sock.close()


def dead_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed: the kernel answers "port unreachable"


def target(port: int, host: str = "127.0.0.1") -> dict[str, str]:
    return base_env(PYTHON_POPCONTEST_STATSD_HOST=host, PYTHON_POPCONTEST_STATSD_PORT=str(port))


def test_check_is_healthy_when_the_test_counter_is_delivered(udp: socket.socket) -> None:
    done, _ = check("--format", "json", env=target(udp.getsockname()[1]))
    assert done.returncode == 0, done.stdout + done.stderr
    assert udp.recv(4096).decode() == CHECK_LINE  # one line, no package names
    result = json.loads(done.stdout)
    assert result["healthy"] is True
    assert result["config"]["host"] == "127.0.0.1"
    assert result["resolve"]["address"] == "127.0.0.1"
    assert result["test_counter"] == {"name": "python_popcon.check", "sent": True, "error": None}
    assert done.stderr == ""


def test_check_table_is_for_people(udp: socket.socket) -> None:
    done, _ = check(env=target(udp.getsockname()[1]))
    assert done.returncode == 0
    assert done.stdout.rstrip().endswith("healthy")
    first_words = [line.split("  ")[0] for line in done.stdout.splitlines()]
    for label in ("host", "port", "prefix", "ipython", "site", "test counter"):
        assert label in first_words
    assert "Traceback" not in done.stdout + done.stderr


def test_check_fails_on_a_dead_port() -> None:
    done, _ = check("--format", "json", env=target(dead_port()))
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["healthy"] is False
    assert "nothing listens on UDP port" in result["test_counter"]["error"]
    assert done.stderr == ""


def test_check_fails_on_a_bad_configuration() -> None:
    done, _ = check(env=base_env(PYTHON_POPCONTEST_STATSD_PORT="99999"))
    assert done.returncode == 1
    assert "PYTHON_POPCONTEST_STATSD_PORT" in done.stdout
    assert done.stdout.rstrip().endswith("NOT healthy")


@pytest.mark.needs_root
def test_check_fails_fast_on_an_unresolvable_host() -> None:
    # A private network namespace has no route to any DNS server: resolution fails at once
    # and nothing leaves the machine.
    unshare = shutil.which("unshare")
    require(unshare is not None and os.geteuid() == 0, "needs root and unshare(1) for -n")
    assert unshare is not None
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True, check=False)
    require(probe.returncode == 0, "cannot create a network namespace here")
    env = target(8125, host="collector.popcon-test.invalid")
    done, elapsed = check("--timeout", "2", "--format", "json", env=env, prefix=[unshare, "-n"])
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["resolve"]["error"]
    assert result["test_counter"]["sent"] is False
    assert elapsed < 10  # bounded by --timeout plus start-up, however the resolver behaves


# --- against the embedded collector ---------------------------------------------------------


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """A real `popularity-contest serve` on OS-assigned loopback ports: (statsd port, URL)."""
    pytest.importorskip("prometheus_client", reason="the collector extra is not installed")
    with Collector(tmp_path / "db", timeout=TIMEOUT) as served:
        yield served.statsd_port, served.url
        served.stop(timeout=TIMEOUT)


def test_expect_collector_confirms_the_collector_counted_it(collector: tuple[int, str]) -> None:
    port, url = collector
    done, _ = check("--expect-collector", url, "--format", "json", env=target(port))
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["collector"]["received"] is True
    assert result["collector"]["evidence"] in (
        "python_popcon_check_total",
        "popcon_collector_lines_received_total",
    )
    # A second check is counted again (the counter moved, not merely exists).
    done, _ = check("--expect-collector", url, env=target(port))
    assert done.returncode == 0, done.stdout
    assert "received (" in done.stdout


def test_expect_collector_fails_when_the_collector_gets_nothing(
    collector: tuple[int, str], udp: socket.socket
) -> None:
    _, url = collector  # the counter goes to another (live) socket, never to the collector
    env = target(udp.getsockname()[1])
    done, _ = check("--expect-collector", url, "--timeout", "0.5", "--format", "json", env=env)
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["test_counter"]["sent"] is True
    assert result["collector"]["received"] is False
    assert any("did not receive" in problem for problem in result["problems"])


def test_expect_collector_fails_when_nothing_serves_the_url(udp: socket.socket) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    done, _ = check("--expect-collector", url, "--timeout", "1", env=target(udp.getsockname()[1]))
    assert done.returncode == 1
    assert "cannot read" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
