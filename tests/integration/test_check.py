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

from popularity_contest.commands.check import suspects
from tests.collectorkit import Collector, http_server
from tests.conftest import require
from tests.envkit import Env

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
    # The port row shows the problem, not the default 8125 as if it were in use.
    (port_row,) = [line for line in done.stdout.splitlines() if line.startswith("port ")]
    assert "unusable: PYTHON_POPCONTEST_STATSD_PORT='99999'" in port_row
    assert "8125" not in port_row


def network_namespace() -> list[str]:
    """The command prefix that runs a program in a private network namespace (no route out,
    loopback down), or a skip (a fail under CI) where root or unshare(1) is missing."""
    unshare = shutil.which("unshare")
    require(unshare is not None and os.geteuid() == 0, "needs root and unshare(1) for -n")
    assert unshare is not None
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True, check=False)
    require(probe.returncode == 0, "cannot create a network namespace here")
    return [unshare, "-n"]


@pytest.mark.needs_root
def test_check_fails_fast_on_an_unresolvable_host() -> None:
    # A private network namespace has no route to any DNS server: resolution fails at once
    # and nothing leaves the machine.
    isolated = network_namespace()
    env = target(8125, host="collector.popcon-test.invalid")
    done, elapsed = check("--timeout", "2", "--format", "json", env=env, prefix=isolated)
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
    assert result["collector"]["kind"] == "popularity-contest"
    assert any("never showed" in problem for problem in result["problems"])
    # Not 8125: the usual suspects of that port are not named, the way to find one is.
    assert any("ss -ulpn" in w for w in result["warnings"])
    assert not any("netdata" in w for w in result["warnings"])


def test_expect_collector_fails_when_nothing_serves_the_url(udp: socket.socket) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    done, _ = check("--expect-collector", url, "--timeout", "1", env=target(udp.getsockname()[1]))
    assert done.returncode == 1
    assert "cannot read" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_expect_collector_says_when_nothing_listens_on_the_statsd_port(
    collector: tuple[int, str],
) -> None:
    _, url = collector  # the collector is up, but the reporter's port is dead
    done, _ = check("--expect-collector", url, "--format", "json", env=target(dead_port()))
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["collector"]["kind"] == "popularity-contest"
    assert any(p.startswith("nothing listens on UDP 127.0.0.1:") for p in result["problems"])


# --- something else on the ports (netdata, the Datadog agent, another web server) ------------


@pytest.fixture
def metrics_server() -> Iterator[tuple[list[str], str]]:
    """A real HTTP server on loopback whose /metrics serves ``body[0]``: (body, URL)."""
    body = ["# TYPE node_cpu_seconds_total counter\nnode_cpu_seconds_total 1.5\n"]

    def answer(path: str) -> tuple[int, str, bytes]:
        return 200 if path == "/metrics" else 404, "text/plain; version=0.0.4", body[0].encode()

    with http_server(answer) as url:
        yield body, url


def test_expect_collector_recognises_an_endpoint_that_is_not_ours(
    metrics_server: tuple[list[str], str], udp: socket.socket
) -> None:
    _, url = metrics_server
    done, _ = check("--expect-collector", url, "--format", "json", env=target(udp.getsockname()[1]))
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["collector"]["kind"] == "other"
    assert any("is not popularity-contest's or statsd_exporter's" in p for p in result["problems"])
    assert "Traceback" not in done.stderr


def test_expect_collector_names_the_usual_suspects_when_the_counter_never_shows(
    metrics_server: tuple[list[str], str], udp: socket.socket
) -> None:
    # A statsd_exporter-like endpoint whose counters never move, while some other program
    # (here a bare UDP socket, as netdata or the Datadog agent would be) takes the datagram.
    body, url = metrics_server
    body[0] = "# TYPE statsd_exporter_lines_total counter\nstatsd_exporter_lines_total 7\n"
    env = target(udp.getsockname()[1])
    done, _ = check("--expect-collector", url, "--timeout", "0.5", env=env)
    assert done.returncode == 1
    assert udp.recv(4096).decode() == CHECK_LINE  # the other listener got it
    assert "(statsd_exporter): NOT received" in done.stdout
    assert "problem: something listens on UDP 127.0.0.1:" in done.stdout
    assert "never showed on" in done.stdout
    warning = next(line for line in done.stdout.splitlines() if "another program" in line)
    assert f"lsof -i UDP:{udp.getsockname()[1]}" in warning
    assert "netdata" not in warning  # they hold 8125, not this port


def test_the_usual_suspects_are_named_for_port_8125_only() -> None:
    assert "netdata and the Datadog agent" in suspects(8125, "localhost:8125")
    assert "netdata" not in suspects(9125, "localhost:9125")


def test_expect_collector_says_when_the_prefix_is_not_mapped(collector: tuple[int, str]) -> None:
    port, url = collector
    env = {**target(port), "PYTHON_POPCONTEST_STATSD_PREFIX": "acme.imported_package"}
    done, _ = check("--expect-collector", url, "--format", "json", env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["collector"]["received"] is True
    assert result["collector"]["evidence"] == "popcon_collector_lines_unmapped_total"
    (problem,) = result["problems"]
    assert "received the test counter, but no mapping rule matches the prefix" in problem
    assert "acme.imported_package: add a rule" in problem
    assert not any("netdata" in w or "another program" in w for w in result["warnings"])
    # A second time too (the mapped check counter may exist by then from other checks).
    done, _ = check("--expect-collector", url, env=env)
    assert done.returncode == 1
    assert "but no mapping rule matches the prefix acme.imported_package" in done.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--expect-collector", "notaurl"], "is not a URL"),
        (["--expect-collector", "ftp://127.0.0.1:9"], "is not a URL"),
        (["--timeout", "0"], "above 0"),
        (["--timeout", "-1"], "above 0"),
        (["--timeout", "nan"], "above 0"),
    ],
)
def test_check_refuses_unusable_flags(args: list[str], says: str) -> None:
    done, elapsed = check(*args, env=target(dead_port()))
    assert done.returncode == 2, done.stderr
    assert says in done.stderr
    assert done.stdout == ""  # refused before anything was looked up or sent
    assert elapsed < 30


@pytest.mark.needs_root
def test_expect_collector_without_url_hints_at_passing_one() -> None:
    # The default URL (127.0.0.1:9102) is read inside a private network namespace, whose
    # loopback is down: nothing answers, and no real collector on this machine is touched.
    isolated = network_namespace()
    done, _ = check("--expect-collector", "--format", "json", env=target(9), prefix=isolated)
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["collector"]["url"] == "http://127.0.0.1:9102"
    assert any(
        "pass your collector's URL: --expect-collector http://HOST:PORT" in p
        for p in result["problems"]
    ), result["problems"]


def test_check_names_an_unrecognised_yes_no_word(udp: socket.socket) -> None:
    env = {**target(udp.getsockname()[1]), "PYTHON_POPCONTEST_DISABLE": "2"}
    done, _ = check("--format", "json", env=env)
    result = json.loads(done.stdout)
    (warning,) = [w for w in result["warnings"] if "PYTHON_POPCONTEST_DISABLE" in w]
    assert "'2' is not a yes/no word" in warning
    for word in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        assert f" {word}" in warning


# --- another environment: --prefix / --python ------------------------------------------------


def test_check_examines_the_environment_named_by_prefix(tmp_path: Path, udp: socket.socket) -> None:
    env = Env(tmp_path / "venv")  # popularity_contest importable there (this checkout)
    settings = target(udp.getsockname()[1])
    done, _ = check("--prefix", str(env.root), "--format", "json", env=settings)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["environment"]["here"] is False
    assert result["prefix"] == str(env.root)
    assert result["environment"]["probe"]["reporter"]["port"] == udp.getsockname()[1]
    assert result["activation"]["site"]["path"] == str(env.site / "zz_popularity_contest.pth")
    assert result["activation"]["site"]["installed"] is False
    assert result["would_report"] is None
    assert udp.recv(4096).decode() == CHECK_LINE

    subprocess.run(
        [sys.executable, "-m", "popularity_contest", "install", "site", "--prefix", str(env.root)],
        env=settings,
        check=True,
        capture_output=True,
    )
    done, _ = check("--python", str(env.python), env=settings)
    assert done.returncode == 0, done.stdout
    assert f"environment         {env.root}" in done.stdout
    assert f"site                installed  {env.site}" in done.stdout


def test_check_fails_for_an_environment_without_popularity_contest(
    tmp_path: Path, udp: socket.socket
) -> None:
    env = Env(tmp_path / "venv")
    (env.site / "_popcon_checkout.pth").unlink()
    done, _ = check("--prefix", str(env.root), env=target(udp.getsockname()[1]))
    assert done.returncode == 1
    assert "popularity-contest  not installed" in done.stdout
    assert f"problem: popularity-contest is not installed for {env.python}" in done.stdout
    assert "test counter        not sent" in done.stdout


def test_check_takes_one_environment_flag(tmp_path: Path) -> None:
    done, _ = check("--prefix", str(tmp_path), "--python", sys.executable, env=base_env())
    assert done.returncode == 2
    assert "not allowed with argument" in done.stderr
    done, _ = check("--prefix", str(tmp_path / "missing"), env=base_env())
    assert done.returncode == 1
    assert done.stderr.strip() == f"popularity-contest check: {tmp_path / 'missing'} does not exist"
