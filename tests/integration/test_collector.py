"""`popularity-contest serve` in a subprocess: real UDP in, real HTTP out, restarts."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from popularity_contest import names
from popularity_contest.collector.store import Store
from popularity_contest.inprocess import lines as wire
from tests.collectorkit import Collector

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_MAPPING = ROOT / "deploy" / "statsd-mapping.yaml"
STOPPED = re.compile(r"stopped: (\d+) lines received, (\d+) stored")
HUB_PREFIX = "python_popcon.hub.hub-a.imported_package"
DEFAULT_PREFIX = "python_popcon.imported_package"
IMPORTED = "python_popcon_imported_package_total"
RECEIVED = "popcon_collector_lines_received_total"


class CollectorProcess(Collector):
    """A collector on OS-assigned ports, with its /metrics samples at hand."""

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, text = self.get("/metrics")
        assert status == 200
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def received(self) -> float:
        return self.samples()[(RECEIVED, ())]


@pytest.fixture
def collectors(tmp_path: Path) -> Iterator[Callable[..., CollectorProcess]]:
    started: list[CollectorProcess] = []

    def start(
        *extra: str, db: Path | None = None, env: dict[str, str] | None = None
    ) -> CollectorProcess:
        collector = CollectorProcess(db or tmp_path / "popcon.sqlite3", *extra, env=env)
        started.append(collector)
        return collector

    yield start
    for collector in started:
        collector.close()


def serve_once(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``popularity-contest serve ARGS`` expected to stop at start-up (30 s at most)."""
    return subprocess.run(
        [sys.executable, "-m", "popularity_contest", "serve", *args],
        capture_output=True, text=True, timeout=30, check=False,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def report(prefix: str, packages: list[str]) -> list[bytes]:
    """What a reporter sends for one process, packed as the reporter packs it."""
    lines = [wire.counter_line(wire.sibling(prefix, names.LEAF_PROCESSES_REPORTED))]
    lines += [wire.counter_line(f"{prefix}.{package}") for package in packages]
    return wire.pack(lines, 512)


def test_reports_become_the_mapped_series_on_metrics_and_in_the_api(
    collectors: Callable[..., CollectorProcess],
) -> None:
    collector = collectors("--mapping", str(DEPLOY_MAPPING))
    datagrams = report(DEFAULT_PREFIX, ["numpy", "PIL"]) + report(HUB_PREFIX, ["numpy"]) * 2
    datagrams += [
        wire.counter_line(
            wire.sibling(HUB_PREFIX, names.LEAF_USER_IMPORTED_PACKAGE) + ".yaml"
        ).encode(),
        wire.counter_line(
            wire.sibling(HUB_PREFIX, names.LEAF_LIBRARY_USED) + ".scikit-learn"
        ).encode(),
    ]
    collector.send(*datagrams)
    collector.wait_until(lambda: collector.received() == 9, what="9 lines")
    samples = collector.samples()
    popcon = {key: value for key, value in samples.items() if key[0].startswith("python_popcon")}
    assert popcon == {
        (IMPORTED, (("namespace", ""), ("package", "PIL"))): 1.0,
        (IMPORTED, (("namespace", ""), ("package", "numpy"))): 1.0,
        (IMPORTED, (("namespace", "hub-a"), ("package", "numpy"))): 2.0,
        ("python_popcon_processes_reported_total", (("namespace", ""),)): 1.0,
        ("python_popcon_processes_reported_total", (("namespace", "hub-a"),)): 2.0,
        (
            "python_popcon_user_imported_package_total",
            (("namespace", "hub-a"), ("package", "yaml")),
        ): 1.0,
        (
            "python_popcon_library_used_total",
            (("distribution", "scikit-learn"), ("namespace", "hub-a")),
        ): 1.0,
    }
    assert samples[("popcon_collector_lines_stored_total", ())] == 9.0

    # The API reads the store: poll until the flush (at most 1 s) has happened.
    def packages() -> list[dict[str, object]]:
        status, body = collector.get("/api/v1/packages?namespace=hub-a")
        assert status == 200
        return json.loads(body)["totals"]  # type: ignore[no-any-return]

    collector.wait_until(lambda: bool(packages()), what="a flush")
    assert packages() == [{"namespace": "hub-a", "package": "numpy", "count": 2}]
    status, csv_text = collector.get("/api/v1/popularity?aggregate=month&format=csv")
    assert status == 200
    header, *rows = csv_text.splitlines()
    assert header == "period,namespace,package,count"
    assert sorted(row.split(",", 1)[1] for row in rows) == [",PIL,1", ",numpy,1", "hub-a,numpy,2"]
    assert collector.get("/healthz")[0] == 200
    assert collector.get("/api/v1/popularity?aggregate=decade")[0] == 400
    assert collector.stop() == 0


def test_hostile_input_is_counted_and_never_crashes_or_leaks(
    collectors: Callable[..., CollectorProcess],
) -> None:
    collector = collectors(env={"PYTHON_POPCONTEST_SERVE_MAX_DATAGRAM": "2000"})
    rng = random.Random(4)
    junk = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) for _ in range(200)]
    collector.send(*junk)
    hostile = [
        b"\xff\xfe\xfd:1|c",
        b"python_popcon.imported_package.numpy:-5|c",
        b"python_popcon.imported_package.numpy:1|c|@0.0000000001",
        b"python_popcon.imported_package.numpy:1|c|@50",
        b"python_popcon.imported_package.numpy:NaN|c",
        b'python_popcon.hub.x"} 1\nevil 1.imported_package.pkg:1|c',
        b'python_popcon.hub.a"b\\c{}.imported_package.pkg:1|c',
        b"python_popcon.imported_package.numpy:1|c\n" * 100,  # oversize (> 2000 bytes)
    ]
    collector.send(*hostile)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.sendto(b"python_popcon.imported_package.ok:1|c", ("127.0.0.1", collector.statsd_port))
    sender_port = sender.getsockname()[1]
    sender.close()
    collector.wait_until(
        lambda: collector.samples().get((IMPORTED, (("namespace", ""), ("package", "ok")))) == 1.0,
        what="the good line after the junk",
    )
    samples = collector.samples()
    assert samples[("popcon_collector_datagrams_oversize_total", ())] == 1.0
    assert (
        samples[("popcon_collector_lines_bad_total", (("reason", "illegal_negative_counter"),))]
        == 1
    )
    assert samples[("popcon_collector_lines_bad_total", (("reason", "increment_too_large"),))] == 1
    assert (
        samples[("popcon_collector_lines_bad_total", (("reason", "invalid_sample_factor"),))] == 1
    )
    assert samples[("popcon_collector_lines_bad_total", (("reason", "malformed_value"),))] >= 1
    # The injected text stays inside a label value, escaped by prometheus_client.
    assert samples[(IMPORTED, (("namespace", 'a"b\\c{}'), ("package", "pkg")))] == 1.0
    assert not any(name.startswith("evil") for name, _ in samples)
    refused = sum(v for (n, _), v in samples.items() if n.startswith("popcon_collector_lines_"))
    assert refused > 0
    assert collector.get("/healthz")[0] == 200
    assert collector.stop() == 0
    assert str(sender_port) not in collector.text()  # a sender's address is never logged


def test_sigterm_flushes_and_counts_survive_restarts(
    collectors: Callable[..., CollectorProcess], tmp_path: Path
) -> None:
    db = tmp_path / "durable.sqlite3"
    line = wire.counter_line(f"{DEFAULT_PREFIX}.numpy").encode()
    collector = collectors(db=db)
    stop_sending = threading.Event()

    def flood() -> None:  # keeps sending while the signal arrives
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            while not stop_sending.is_set():
                for _ in range(50):
                    sock.sendto(b"\n".join([line] * 10), ("127.0.0.1", collector.statsd_port))
                time.sleep(0.001)

    sender = threading.Thread(target=flood)
    sender.start()
    try:
        collector.wait_until(lambda: collector.received() >= 5000, what="traffic")
        assert collector.stop(signal.SIGTERM) == 0
    finally:
        stop_sending.set()
        sender.join()
    found = STOPPED.search(collector.text())
    assert found, collector.text()
    received, stored = int(found.group(1)), int(found.group(2))
    assert received == stored >= 5000
    with Store.open(db, create=False) as store:
        assert sum(t.value for t in store.series_totals()) == stored  # every counted line

    # Restart: /metrics continues from the stored total, and new lines add to it.
    again = collectors(db=db)
    again.send(line)
    key = (IMPORTED, (("namespace", ""), ("package", "numpy")))
    again.wait_until(lambda: again.samples().get(key) == stored + 1, what="continued total")
    assert again.stop(signal.SIGINT) == 0


def test_sigkill_loses_nothing_already_flushed(
    collectors: Callable[..., CollectorProcess], tmp_path: Path
) -> None:
    db = tmp_path / "killed.sqlite3"
    collector = collectors(db=db)
    collector.send(*report(DEFAULT_PREFIX, [f"p{i}" for i in range(40)]))

    def flushed() -> float:
        _, body = collector.get("/api/v1/packages?start=0")
        return sum(row["count"] for row in json.loads(body)["totals"])

    collector.wait_until(lambda: flushed() == 40, what="the flush")
    collector.send(*report(DEFAULT_PREFIX, ["late"]) * 5)  # may or may not be flushed
    assert collector.stop(signal.SIGKILL) == -signal.SIGKILL
    with Store.open(db, create=False) as store:
        totals = {t.labels.get("package"): t.value for t in store.totals(0, time.time() + 3600)}
    assert sum(v for k, v in totals.items() if k != "late") == 40  # committed: all there
    assert totals.get("late", 0) in (0, 5)  # a flush is all or nothing
    restarted = collectors(db=db)
    assert restarted.get("/healthz")[0] == 200
    assert restarted.stop() == 0


def test_a_broken_mapping_file_stops_start_up_with_one_clear_line(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        'mappings:\n  - match: "ok.*"\n    name: "ok"\n  - match: "a..b"\n    name: "x"\n'
    )
    result = serve_once(
        "--statsd", "127.0.0.1:0", "--http", "127.0.0.1:0",
        "--db", str(tmp_path / "db"), "--mapping", str(mapping),
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "rule 2 (match 'a..b')" in lines[0]
    assert str(mapping) in lines[0]
    assert not (tmp_path / "db").exists()  # nothing created before the rules were checked


def test_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        result = serve_once(
            "--statsd", f"127.0.0.1:{port}", "--http", "127.0.0.1:0", "--db", str(tmp_path / "db")
        )  # fmt: skip
    assert result.returncode == 1
    assert f"the statsd (UDP) address 127.0.0.1:{port} is already in use" in result.stderr
    assert "--statsd HOST:PORT or PYTHON_POPCONTEST_SERVE_STATSD" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_busy_http_port_names_the_address_and_the_flag(
    collectors: Callable[..., CollectorProcess], tmp_path: Path
) -> None:
    first = collectors()
    result = serve_once(
        "--statsd", "127.0.0.1:0", "--http", f":{first.http_port}",
        "--db", str(tmp_path / "other.db"),
    )  # fmt: skip
    assert result.returncode == 1
    assert f"the HTTP address 127.0.0.1:{first.http_port} is already in use" in result.stderr
    assert "--http HOST:PORT or PYTHON_POPCONTEST_SERVE_HTTP" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_statsd_serves_page_and_api_from_the_store_only(
    collectors: Callable[..., CollectorProcess], tmp_path: Path
) -> None:
    db = tmp_path / "shared.sqlite3"
    writer = collectors(db=db)
    writer.send(*report(DEFAULT_PREFIX, ["numpy"]))
    # Flushed: the API reads the store, so numpy there means it is in the file.
    writer.wait_until(
        lambda: "numpy" in writer.read("/api/v1/packages?start=0"), what="a flush to the store"
    )
    reader = collectors("--no-statsd", db=db)
    assert "listening statsd=off http=" in reader.text()
    totals = json.loads(reader.read("/api/v1/packages?start=0"))["totals"]
    assert [row["package"] for row in totals] == ["numpy"]
    assert "numpy" in reader.read("/")
    assert reader.stop() == 0


def test_an_unusable_setting_is_a_usage_error_naming_the_variable(tmp_path: Path) -> None:
    result = serve_once(
        "--db", str(tmp_path / "db"), env={"PYTHON_POPCONTEST_SERVE_FLUSH_INTERVAL": "soon"}
    )
    assert result.returncode == 2
    assert "PYTHON_POPCONTEST_SERVE_FLUSH_INTERVAL" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_series_cap_shows_in_healthz_and_prune_makes_room_while_running(
    collectors: Callable[..., CollectorProcess], tmp_path: Path
) -> None:
    db = tmp_path / "capped.sqlite3"
    collector = collectors(
        db=db, env={"PYTHONPATH": str(ROOT), "PYTHON_POPCONTEST_SERVE_MAX_SERIES": "3"}
    )
    collector.send(*report(DEFAULT_PREFIX, ["numpy", "junk-1", "junk-2", "pandas"]))
    collector.wait_until(
        lambda: (
            json.loads(collector.get("/healthz")[1]).get("pending_series") == 0
            and collector.samples().get(("popcon_collector_series_overflow_total", ())) == 2.0
        ),
        what="the cap",
    )  # processes_reported + numpy + junk-1 fill it; junk-2 and pandas overflow
    status, body = collector.get("/healthz")
    assert status == 200
    assert "popularity-contest prune" in json.loads(body)["warning"]
    assert "series cap reached (3 series)" in collector.text()
    assert collector.samples()[("popcon_collector_series_full", ())] == 1.0
    pruned = subprocess.run(
        [sys.executable, "-m", "popularity_contest", "prune", "--db", str(db), "--match", "junk-*"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "removed 1 series" in pruned.stdout
    pandas = (IMPORTED, (("namespace", ""), ("package", "pandas")))
    collector.wait_until(
        lambda: (
            (collector.send(*report(DEFAULT_PREFIX, ["pandas"])), collector.samples())[1].get(
                pandas
            )
            is not None
        ),
        what="pandas counted after the prune",
    )
    assert json.loads(collector.get("/healthz")[1]).get("warning") is not None  # full again
    assert collector.stop() == 0


def raw_http(port: int, request: bytes, *, read: bool = True) -> tuple[bytes, int]:
    """Send raw bytes from a known local port; (what came back, that port)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        local = conn.getsockname()[1]
        conn.sendall(request.replace(b"\r\nHost: x\r\n", b"\r\nHost: x\r\nConnection: close\r\n"))
        if not read:
            return b"", local  # hang up mid-request
        chunks = []
        try:
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            # The server closed on a request it refuses (an oversized header) while bytes
            # were still unread: the kernel answers with a reset. What arrived is the answer.
            pass
        return b"".join(chunks), local


def test_odd_requests_get_clean_answers_and_nothing_about_clients_is_logged(
    collectors: Callable[..., CollectorProcess],
) -> None:
    collector = collectors()
    port = collector.http_port
    cases = [
        (b"POST /api/v1/packages HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", b" 405 "),
        (b"DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n", b" 405 "),
        (b"BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b" 405 "),
        # Every GET endpoint refuses other methods with 405 (not 501, which means "unknown").
        (b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", b" 405 "),
        (b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", b" 405 "),
        (b"DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b" 405 "),
        (b"PUT /api/v1/popularity HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", b" 405 "),
        (b"DELETE /api/v1/packages HTTP/1.1\r\nHost: x\r\n\r\n", b" 405 "),
        (b"GET /api/v1/popularity?end=1e18 HTTP/1.1\r\nHost: x\r\n\r\n", b" 400 "),
        (b"GET /api/v1/packages?start=%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n", b" 400 "),
        (b"GET /nope/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", b" 404 "),
        (b"GET /static/..%2f..%2fsettings.py HTTP/1.1\r\nHost: x\r\n\r\n", b" 404 "),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", b""),
        (b"\x16\x03\x01\x02\x00garbage\r\n\r\n", b""),
    ]
    locals_seen = []
    for request, status in cases:
        answer, local = raw_http(port, request)
        locals_seen.append(local)
        assert status in answer.split(b"\r\n", 1)[0] + b" ", (request[:40], answer[:200])
        if answer:
            assert b"Traceback" not in answer
    locals_seen.extend(
        raw_http(port, request, read=False)[1]
        for request in (b"GET /api/v1/packages HTTP/1.1\r\nHost: x\r\n", b"GET /metr")
    )
    status, body = collector.get("/healthz")  # still serving
    assert status == 200, body
    assert collector.stop() == 0
    log = collector.text()
    assert "Traceback" not in log
    for local in locals_seen:
        assert f":{local}" not in log, log
        assert f" {local}" not in log, log
