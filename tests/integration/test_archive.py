"""`popularity-contest archive` against a real Prometheus holding days of known history.

The history is written as OpenMetrics, turned into TSDB blocks by `promtool tsdb
create-blocks-from openmetrics` and served by a real Prometheus. The truth per UTC day is
computed here from the samples with the counting definition (each sample adds what the
counter gained since the sample before it, or its whole value when there is none within the
lookback or the counter went down): a series born mid-range, a counter reset, a scrape gap
across midnight, hubs, and every archived metric.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from popularity_contest import names
from popularity_contest.collector.store import DAY, Store
from tests.collectorkit import Collector, http_server
from tests.conftest import require_system
from tests.integration.prometheus import PrometheusServer

STEP = 1800  # a sample every 30 minutes
OFFSET = 7 * 60  # never exactly at midnight: (end - 1d, end] would be ambiguous to read
DAYS = 6  # days of history before today
LOOKBACK = 86400

Key = tuple[str, tuple[tuple[str, str], ...]]


def history(start: int) -> dict[Key, list[tuple[int, float]]]:
    """Series -> [(time, value)], starting ``start`` (a UTC midnight) for ``DAYS`` days."""
    times = [start + OFFSET + i * STEP for i in range(DAYS * DAY // STEP)]
    series: dict[Key, list[tuple[int, float]]] = {}

    def add(metric: str, labels: dict[str, str], points: list[tuple[int, float]]) -> None:
        series[(metric, tuple(sorted(labels.items())))] = points

    # Every sample: two more processes in hub-a, one in hub-b.
    add(
        names.PROCESSES_REPORTED,
        {"namespace": "hub-a"},
        [(t, 2.0 * (i + 1)) for i, t in enumerate(times)],
    )
    add(
        names.PROCESSES_REPORTED,
        {"namespace": "hub-b"},
        [(t, float(i + 1)) for i, t in enumerate(times)],
    )
    # Born on day 2 at noon with 5, then one more every sample.
    born = [t for t in times if t >= start + 2 * DAY + DAY // 2]
    add(
        names.IMPORTED_PACKAGE,
        {"namespace": "hub-a", "package": "numpy"},
        [(t, 5.0 + i) for i, t in enumerate(born)],
    )
    # Up to 100 by day 3 at 10:00, then the exporter restarts: 1, 2, ...
    values: list[tuple[int, float]] = []
    value = 40.0
    restarted = False
    for t in times:
        if not restarted and t >= start + 3 * DAY + 10 * 3600:
            restarted, value = True, 1.0
        else:
            value = min(value + 1, 100.0) if not restarted else value + 1
        values.append((t, value))
    add(names.IMPORTED_PACKAGE, {"namespace": "hub-a", "package": "pandas"}, values)
    # Scraped until day 1 at 20:00, then not until day 2 at 04:00: the gain shows on day 2.
    gap = [t for t in times if not (start + DAY + 20 * 3600 < t < start + 2 * DAY + 4 * 3600)]
    add(
        names.IMPORTED_PACKAGE,
        {"namespace": "hub-b", "package": "scipy"},
        [(t, 3.0 * (i + 1)) for i, t in enumerate(times) if t in set(gap)],
    )
    add(
        names.USER_IMPORTED_PACKAGE,
        {"namespace": "hub-b", "package": "mytools"},
        [(t, 1.0) for t in times[:10]],
    )
    add(
        names.DIRECTLY_IMPORTED_PACKAGE,
        {"namespace": "hub-a", "package": "numpy"},
        [(t, float(1 + i // 3)) for i, t in enumerate(times)],
    )
    add(
        names.LIBRARY_USED,
        {"namespace": "hub-a", "distribution": "scikit-learn"},
        [(t, float(i // 4)) for i, t in enumerate(times)],
    )
    return series


def truth(series: dict[Key, list[tuple[int, float]]]) -> Counter[tuple[Key, int]]:
    """(series, day start) -> count, by the counting definition."""
    found: Counter[tuple[Key, int]] = Counter()
    for key, points in series.items():
        previous: tuple[int, float] | None = None
        for t, value in points:
            if previous is None or t - previous[0] > LOOKBACK or value < previous[1]:
                gain = value
            else:
                gain = value - previous[1]
            day = (t - 1) // DAY * DAY  # (end - 1d, end]
            if gain:
                found[(key, day)] += gain
            previous = (t, value)
    return found


def openmetrics(series: dict[Key, list[tuple[int, float]]]) -> str:
    families: dict[str, list[str]] = {}
    for (metric, labels), points in series.items():
        text = ",".join(f'{k}="{v}"' for k, v in labels)
        lines = families.setdefault(metric.removesuffix("_total"), [])
        lines += [f"{metric}{{{text}}} {value:g} {t}" for t, value in points]
    out: list[str] = []
    for family, lines in families.items():
        out += [f"# TYPE {family} counter", *lines]
    return "\n".join([*out, "# EOF", ""])


@dataclass
class Loaded:
    prometheus: PrometheusServer
    start: int
    truth: Counter[tuple[Key, int]]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    binary = require_system("prometheus", "prometheus")
    promtool = require_system("promtool", "prometheus")
    work = tmp_path_factory.mktemp("archive-history")
    start = int(time.time()) // DAY * DAY - DAYS * DAY
    series = history(start)
    source = work / "history.om"
    source.write_text(openmetrics(series))
    created = subprocess.run(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(source),
            str(work / "p" / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    with PrometheusServer(binary, work / "p", {}) as prometheus:
        yield Loaded(prometheus, start, truth(series))


def archive(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "popularity_contest", "archive", "--db", str(db), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def stored(db: Path, cluster: str = "east") -> Counter[tuple[Key, int]]:
    """What the store holds per (series without `cluster`, day)."""
    found: Counter[tuple[Key, int]] = Counter()
    with Store.open(db, create=False) as store:
        for count in store.counts(0, time.time() + DAY, "day", metric=None):
            labels = dict(count.labels)
            assert labels.pop("cluster") == cluster
            key = (count.name, tuple(sorted(labels.items())))
            found[(key, int(count.period.timestamp()))] += count.value
    return found


def test_archive_writes_each_complete_day_exactly(loaded: Loaded, tmp_path: Path) -> None:
    db = tmp_path / "popcon.sqlite3"
    done = archive(
        db, "--source", f"east={loaded.prometheus.url}", "--backfill", "10d", "--format", "json"
    )
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["error"] is None
    assert row["days"] == 10  # today - 10d .. yesterday: complete days only
    assert stored(db) == loaded.truth
    # The situations the counting must get right are all in there.
    assert any(key[0][1] == (("namespace", "hub-a"), ("package", "numpy")) for key in loaded.truth)

    again = archive(db, "--source", f"east={loaded.prometheus.url}", "--format", "json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)[0]["days"] == 0  # idempotent: nothing new to add
    assert stored(db) == loaded.truth


def test_an_interrupted_archive_resumes_after_its_last_day(loaded: Loaded, tmp_path: Path) -> None:
    db = tmp_path / "popcon.sqlite3"
    stop = time.strftime("%Y-%m-%d", time.gmtime(loaded.start + 3 * DAY))
    first = archive(
        db, "--source", f"east={loaded.prometheus.url}", "--backfill", "7d", "--until", stop
    )
    assert first.returncode == 0, first.stderr
    partial = stored(db)
    assert partial == Counter(
        {k: v for k, v in loaded.truth.items() if k[1] <= loaded.start + 3 * DAY}
    )
    with Store.open(db) as store:
        assert store.archive_checkpoint("east") == loaded.start + 3 * DAY
    rest = archive(db, "--source", f"east={loaded.prometheus.url}")
    assert rest.returncode == 0, rest.stderr
    assert stored(db) == loaded.truth


def test_several_sources_keep_their_cluster_and_a_dead_one_does_not_advance(
    loaded: Loaded, tmp_path: Path
) -> None:
    db = tmp_path / "popcon.sqlite3"
    done = archive(
        db,
        "--source",
        f"east={loaded.prometheus.url}",
        "--source",
        "west=http://127.0.0.1:9",  # nothing listens on the discard port
        "--backfill",
        "8d",
        "--format",
        "json",
    )
    assert done.returncode == 1
    rows = {row["source"]: row for row in json.loads(done.stdout)}
    assert rows["east"]["error"] is None
    assert "127.0.0.1:9" in rows["west"]["error"]
    assert "Traceback" not in done.stderr
    with Store.open(db) as store:
        assert store.archive_checkpoint("west") is None
        clusters = {dict(t.labels)["cluster"] for t in store.totals(0, time.time(), metric=None)}
    assert clusters == {"east"}
    assert stored(db, "east") == loaded.truth


def test_report_reads_archived_days_like_collected_ones(loaded: Loaded, tmp_path: Path) -> None:
    db = tmp_path / "popcon.sqlite3"
    assert (
        archive(db, "--source", f"east={loaded.prometheus.url}", "--backfill", "8d").returncode == 0
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "popularity_contest",
            "report",
            "--db",
            str(db),
            "--since",
            "9d",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    text = done.stdout
    expected = sum(
        v
        for (key, _), v in loaded.truth.items()
        if key == (names.IMPORTED_PACKAGE, (("namespace", "hub-a"), ("package", "numpy")))
    )
    assert '"numpy"' in text
    assert str(int(expected)) in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--source", "east"), "expected NAME=URL"),
        (("--source", "east=ftp://x"), "http:// or https://"),
        (("--source", "a=http://x", "--source", "a=http://y"), "named twice"),
        (("--source", "a=http://x", "--prometheus-header", "nocolon"), "Name: value"),
        (("--source", "a=http://x", "--until", "someday"), "ISO 8601"),
    ],
)
def test_bad_flags_fail_with_one_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    done = archive(tmp_path / "db.sqlite3", *args)
    assert done.returncode != 0
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.fixture
def html_501() -> Iterator[str]:
    """A real HTTP server that answers every GET with a multi-line HTML 501 page."""
    page = b"<html>\n<head><title>501</title></head>\n<body>Not Implemented</body>\n</html>\n"
    with http_server(lambda _path: (501, "text/html", page)) as url:
        yield url


def test_a_source_that_is_not_a_prometheus_api_is_one_line_with_a_hint(
    tmp_path: Path, html_501: str
) -> None:
    # The embedded collector (which answers its own JSON 404) and an HTML error page.
    with Collector(tmp_path / "serve.sqlite3", "--no-statsd") as served:
        done = archive(
            tmp_path / "db.sqlite3",
            "--source",
            f"serve={served.url}",
            "--source",
            f"html={html_501}",
            "--backfill",
            "3d",
        )
        served.stop()
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert len(lines) == 4, done.stdout  # header, rule, one line per source
    serve_row = next(line for line in lines if line.startswith("serve "))
    html_row = next(line for line in lines if line.startswith("html "))
    assert "HTTP 404" in serve_row
    assert "HTTP 501" in html_row
    assert "<html" not in html_row
    assert "\\n" not in done.stdout
    for row in (serve_row, html_row):
        assert "this looks like popularity-contest serve or not a Prometheus API" in row
