"""Collector API and page under load: 50 concurrent clients on a store of 2,000 series x 90 days.

    .venv/bin/python benchmarks/collector_api_load.py [--clients 50] [--seconds 20]
        [--series 2000] [--days 90] [--hours-per-day 8] [--quick]

1. **Store.** ``--series`` package series over 5 hubs, each with counts in ``--hours-per-day``
   random hours of each of ``--days`` days (hourly buckets, as under the default 90-day
   hourly retention), written straight into a store (schema of this checkout), plus the
   processes_reported series. Built once per shape under ``benchmarks/.env/`` and reused.
2. **Query cost** (single client, cold: every question differs, so no answer is shared):
   the median and worst of 5 runs of each question below.
3. **Load.** ``--clients`` threads in this process, each with its own keep-alive HTTP/1.1
   connection, ask in a loop for ``--seconds`` after a 3-second warm-up that is not counted
   (a collector that has been running has its answers at hand): 70 % ``/api/v1/packages``
   (default 30-day window), 30 % the page ``/``; with ``--rare F``, a fraction F of the
   questions are ones few others ask instead (a window ending at a random hour of the last
   week: ``/api/v1/packages?end=...``), each costing a store query. Latency is per request,
   from sending to the last byte; the figures are p50, p95, p99 and the worst, per kind.
   The collector runs as ``serve --no-statsd`` (nothing received: the answer cache then
   lives its full 5 s); the clients share the machine's cores with it.

Target (issue 11): p99 under 200 ms for 50 concurrent clients of ``/api/v1/packages`` and the
page, on a 2-core machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _collector_harness import Collector

ROOT = Path(__file__).resolve().parent
DAY, HOUR = 86400, 3600
IMPORTED = "python_popcon_imported_package_total"
PROCESSES = "python_popcon_processes_reported_total"


def build_store(path: Path, series: int, days: int, hours_per_day: int, now: float) -> None:
    """Fill a fresh store the fast way (one transaction), consistent with Store.add."""
    sys.path.insert(0, str(ROOT.parent))
    from popularity_contest.collector.store import Store

    Store.open(path).close()  # schema
    rng = random.Random(11)
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    rows = []
    hubs = [f"hub{i}" for i in range(5)]
    for i in range(series):
        hub = hubs[i % len(hubs)]
        labels = json.dumps(
            {"namespace": hub, "package": f"package{i:05d}"}, sort_keys=True, separators=(",", ":")
        )
        rows.append((i + 1, IMPORTED, labels, hub))
    for j, hub in enumerate(hubs):
        labels = json.dumps({"namespace": hub}, separators=(",", ":"))
        rows.append((series + j + 1, PROCESSES, labels, hub))
    db.executemany("INSERT INTO series (id, name, labels, namespace) VALUES (?, ?, ?, ?)", rows)
    today = int(now) - int(now) % DAY
    buckets: list[tuple[int, int, int, float]] = []
    daily: list[tuple[int, int, float]] = []
    totals = [0.0] * (series + len(hubs) + 1)
    for d in range(days):
        day = today - d * DAY
        for series_id in range(1, series + len(hubs) + 1):
            weight = 1 + (series - series_id if series_id <= series else series * 5) // 200
            day_sum = 0.0
            for hour in rng.sample(range(24), hours_per_day):
                value = float(rng.randint(1, weight))
                buckets.append((day + hour * HOUR, HOUR, series_id, value))
                day_sum += value
            daily.append((day, series_id, day_sum))
            totals[series_id] += day_sum
        if len(buckets) > 500_000:
            db.executemany("INSERT INTO bucket VALUES (?, ?, ?, ?)", buckets)
            buckets = []
    db.executemany("INSERT INTO bucket VALUES (?, ?, ?, ?)", buckets)
    db.executemany("INSERT INTO day VALUES (?, ?, ?)", daily)
    db.executemany(
        "UPDATE series SET total = ? WHERE id = ?", [(t, i) for i, t in enumerate(totals) if i]
    )
    db.commit()
    db.close()


class Client(threading.Thread):
    def __init__(  # noqa: PLR0917
        self, port: int, until: float, seed: int, now: float, rare: float, counting: float
    ) -> None:
        super().__init__(daemon=True)
        self.port, self.until, self.rng, self.now = port, until, random.Random(seed), now
        self.rare, self.counting = rare, counting
        self.latencies: dict[str, list[float]] = {"packages": [], "page": [], "rare": []}
        self.errors: dict[str, int] = {}

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        while time.monotonic() < self.until:
            pick = self.rng.random()
            if pick >= self.rare:
                pick = self.rng.random()
                kind, path = ("packages", "/api/v1/packages") if pick < 0.7 else ("page", "/")
            else:
                end = int(self.now) - self.rng.randrange(7 * 24) * HOUR
                kind, path = "rare", f"/api/v1/packages?end={end}"
            began = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Accept-Encoding": "identity"})
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                status = type(error).__name__  # type: ignore[assignment]
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            took = time.perf_counter() - began
            if time.monotonic() < self.counting:
                continue  # warming up
            if status == 200:
                self.latencies[kind].append(took)
            else:
                self.errors[str(status)] = self.errors.get(str(status), 0) + 1
        conn.close()


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def cold_queries(port: int, now: float) -> None:
    questions = [
        ("packages, 30 days", "/api/v1/packages?end={end}"),
        ("packages, 90 days", "/api/v1/packages?start={start90}&end={end}"),
        ("popularity per day, 30 days", "/api/v1/popularity?end={end}"),
        (
            "popularity per week, 90 days",
            "/api/v1/popularity?aggregate=week&start={start90}&end={end}",
        ),
        ("popularity per hour, 30 days (refused)", "/api/v1/popularity?aggregate=hour&end={end}"),
        (
            "popularity per hour, 2 days, 1 hub",
            "/api/v1/popularity?aggregate=hour&namespace=hub1&start={start2}&end={end}",
        ),
        ("page, 30 days", "/?window=30d&x={end}"),
        ("page, 90 days", "/?window=90d&x={end}"),
    ]
    print("query cost, one client, nothing shared (median / worst of 5):")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for label, template in questions:
        times, status, size = [], 0, 0
        for k in range(5):
            end = int(now) - k * HOUR - 1  # a different question each time
            path = template.format(end=end, start90=end - 90 * DAY, start2=end - 2 * DAY)
            began = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            times.append(time.perf_counter() - began)
            status, size = response.status, len(body)
        print(
            f"  {label:42} {statistics.median(times) * 1000:7.1f} ms / {max(times) * 1000:7.1f} ms"
            f"  (HTTP {status}, {size / 1000:,.0f} kB)"
        )
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--hours-per-day", type=int, default=8)
    parser.add_argument("--rare", type=float, default=0.0, help="fraction of rare questions")
    parser.add_argument("--quick", action="store_true", help="500 series x 30 days, 5 s")
    args = parser.parse_args()
    if args.quick:
        args.series, args.days, args.seconds = 500, 30, 5.0
    now = time.time()
    cache = ROOT / ".env" / f"api-store-{args.series}x{args.days}x{args.hours_per_day}.sqlite3"
    cache.parent.mkdir(parents=True, exist_ok=True)
    built = cache.exists() and now - cache.stat().st_mtime < DAY / 2
    if not built:
        began = time.monotonic()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{cache}{suffix}").unlink(missing_ok=True)
        build_store(cache, args.series, args.days, args.hours_per_day, now)
        print(f"store built in {time.monotonic() - began:.0f} s")
    with sqlite3.connect(cache) as db:
        buckets = db.execute("SELECT COUNT(*) FROM bucket").fetchone()[0]
    print(
        f"store: {args.series:,} package series x {args.days} days, {buckets:,} hourly buckets,"
        f" {cache.stat().st_size / 1e6:,.0f} MB; {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "store.sqlite3"
        db.write_bytes(cache.read_bytes())
        collector = Collector(db, extra=["--no-statsd"]).start()
        try:
            cold_queries(collector.http_port, now)
            counting = time.monotonic() + 3.0
            until = counting + args.seconds
            clients = [
                Client(collector.http_port, until, i, now, args.rare, counting)
                for i in range(args.clients)
            ]
            cpu_before = collector.cpu_seconds()
            for client in clients:
                client.start()
            for client in clients:
                client.join()
            cpu = collector.cpu_seconds() - cpu_before
        finally:
            collector.stop()
    print(
        f"load: {args.clients} clients for {args.seconds:g} s after 3 s of warm-up, rare"
        f" questions {args.rare:.0%} (collector CPU {cpu:.1f} s in all):"
    )
    everything: list[float] = []
    for kind in ("packages", "page", "rare"):
        values = [v for c in clients for v in c.latencies[kind]]
        everything += values if kind != "rare" else []
        print(
            f"  {kind:9} {len(values):7,} answers  p50 {quantile(values, 0.5) * 1000:6.1f} ms"
            f"  p95 {quantile(values, 0.95) * 1000:6.1f} ms"
            f"  p99 {quantile(values, 0.99) * 1000:6.1f} ms"
            f"  worst {max(values, default=float('nan')) * 1000:6.1f} ms"
        )
    errors: dict[str, int] = {}
    for client in clients:
        for key, count in client.errors.items():
            errors[key] = errors.get(key, 0) + count
    p99 = quantile(everything, 0.99)
    print(
        f"  packages + page: p99 {p99 * 1000:.1f} ms (target < 200 ms:"
        f" {'ok' if p99 < 0.2 else 'MISSED'}); errors {errors or 'none'}"
    )


if __name__ == "__main__":
    main()
