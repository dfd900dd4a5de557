"""Collector throughput: lines/s stored, lines lost and CPU per 100k lines, paced and flat out.

    .venv/bin/python benchmarks/collector_throughput.py [--rate 100000] [--seconds 30] [--quick]

A load generator on 127.0.0.1 sends report-like datagrams (~30 lines: one process's
``processes_reported`` and 29 ``imported_package`` lines, 5 hubs, 300 packages) to a
``popularity-contest serve`` subprocess: first paced at ``--rate`` lines/s, then as fast as
one Python sender can. "Stored" is read back from the SQLite store after a SIGTERM (which
flushes), "lost" is sent minus stored. The baseline, measured in the same run, is a bare
Python receiver that only ``recv``s the same traffic: the floor cost of UDP in Python.
Anchor (statsd_exporter, Go, same load, measured for the issue): zero loss at 100,000
lines/s paced using ~0.8 core, i.e. ~0.8 CPU s per 100k lines; saturation near 200k lines/s.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _collector_harness import Collector, report_datagrams, send

from popularity_contest.collector.store import Store

ANCHOR_CPU_PER_100K = 0.8
ANCHOR_SATURATION = 200_000


def _stored_lines(db: Path) -> float:
    with Store.open(db, create=False) as store:
        return sum(total.value for total in store.series_totals())


def run_collector(rate: float | None, seconds: float, datagrams: list[bytes]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite3"
        collector = Collector(db).start()
        cpu_before = collector.cpu_seconds()
        started = time.monotonic()
        sent = send(collector.statsd_port, datagrams, rate, seconds)
        elapsed = time.monotonic() - started

        # Wait until the collector has processed what is queued (received stops growing).
        previous = -1.0
        samples = collector.metrics()
        while samples["popcon_collector_lines_received_total"] != previous:
            previous = samples["popcon_collector_lines_received_total"]
            time.sleep(0.3)
            samples = collector.metrics()
        cpu = collector.cpu_seconds() - cpu_before
        rss = collector.rss_bytes()
        code = collector.stop()
        stored = _stored_lines(db)
    return {
        "sent": sent,
        "received": samples["popcon_collector_lines_received_total"],
        "kernel_drops": samples.get("popcon_collector_datagrams_dropped_total", float("nan")),
        "stored": stored,
        "lost": sent - stored,
        "seconds": elapsed,
        "cpu": cpu,
        "rss_mb": rss / 1e6,
        "exit": code,
    }


def run_baseline(rate: float | None, seconds: float, datagrams: list[bytes]) -> dict[str, float]:
    """A bare receiver thread in a child process would be fairer; a thread here is enough to
    show the floor cost of recv in CPython (its CPU is measured with thread_time)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    counted = {"lines": 0, "cpu": 0.0}
    stop = threading.Event()

    def receive() -> None:
        sock.settimeout(0.5)
        begin = time.thread_time()
        while not stop.is_set():
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            counted["lines"] += data.count(b"\n") + 1
        counted["cpu"] = time.thread_time() - begin

    thread = threading.Thread(target=receive)
    thread.start()
    sent = send(port, datagrams, rate, seconds)
    time.sleep(0.5)
    stop.set()
    thread.join()
    sock.close()
    return {"sent": sent, "received": counted["lines"], "cpu": counted["cpu"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=100_000, help="paced lines/s")
    parser.add_argument("--seconds", type=float, default=30, help="paced duration")
    parser.add_argument("--flat-seconds", type=float, default=10, help="flat-out duration")
    parser.add_argument("--quick", action="store_true", help="3 s runs, to check that it runs")
    args = parser.parse_args()
    if args.quick:
        args.seconds = args.flat_seconds = 3
    datagrams = report_datagrams(2000)
    per = sum(d.count(b"\n") + 1 for d in datagrams) / len(datagrams)
    size = sum(map(len, datagrams)) / len(datagrams)
    print(f"load: {per:.0f} lines per datagram, {size:.0f} bytes each; {os.cpu_count()} CPUs")

    base = run_baseline(args.rate, min(args.seconds, 10), datagrams)
    base_cpu = base["cpu"] / (base["received"] / 1e5)
    print(
        f"baseline (bare Python recv, paced {args.rate:,.0f}/s): "
        f"{base['received']:,.0f}/{base['sent']:,.0f} lines, {base_cpu:.3f} CPU s per 100k lines"
    )

    paced = run_collector(args.rate, args.seconds, datagrams)
    paced_cpu = paced["cpu"] / (paced["sent"] / 1e5)
    print(
        f"paced {args.rate:,.0f} lines/s for {paced['seconds']:.1f} s: sent {paced['sent']:,.0f},"
        f" stored {paced['stored']:,.0f}, lost {paced['lost']:,.0f}"
        f" (kernel drops {paced['kernel_drops']:,.0f} datagrams),"
        f" CPU {paced['cpu']:.2f} s = {paced['cpu'] / paced['seconds']:.2f} core,"
        f" {paced_cpu:.3f} CPU s per 100k lines, RSS {paced['rss_mb']:.0f} MB, exit {paced['exit']}"
    )
    print(
        f"  ratio: {paced_cpu / base_cpu:.1f}x the bare-recv baseline;"
        f" {paced_cpu / ANCHOR_CPU_PER_100K:.2f}x statsd_exporter's ~0.8 CPU s per 100k lines"
    )

    flat = run_collector(None, args.flat_seconds, datagrams)
    rate = flat["stored"] / flat["seconds"]
    print(
        f"flat out for {flat['seconds']:.1f} s: sent {flat['sent'] / flat['seconds']:,.0f} lines/s,"
        f" stored {rate:,.0f} lines/s ({flat['stored']:,.0f}), lost {flat['lost']:,.0f}"
        f" ({flat['lost'] / flat['sent']:.1%}), CPU {flat['cpu'] / flat['seconds']:.2f} core,"
        f" {rate / ANCHOR_SATURATION:.2f}x statsd_exporter's ~200k lines/s saturation"
    )


if __name__ == "__main__":
    main()
