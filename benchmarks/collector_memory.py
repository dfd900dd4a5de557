"""Collector memory: resident set size over 1,000,000 lines carrying 10,000 distinct names.

    .venv/bin/python benchmarks/collector_memory.py [--lines 1000000] [--names 10000] [--quick]

Datagrams of 30 lines (``python_popcon.imported_package.pkgNNNNN``) cycle through every name,
paced at 100,000 lines/s. The baseline, measured in the same run, is the collector's RSS right
after start-up; the figure is its peak RSS (``VmHWM``) once every line is stored.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _collector_harness import RECEIVED, Collector, peak_rss, send


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--names", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="100,000 lines")
    args = parser.parse_args()
    if args.quick:
        args.lines = 100_000
    names = [f"python_popcon.imported_package.pkg{i:05d}:1|c" for i in range(args.names)]
    datagrams = [
        "\n".join(names[(i + j) % len(names)] for j in range(30)).encode()
        for i in range(0, len(names), 30)
    ]
    rate = 100_000
    with tempfile.TemporaryDirectory() as tmp:
        collector = Collector(Path(tmp) / "mem.sqlite3").start()
        time.sleep(0.5)  # let start-up settle before the baseline reading
        base = collector.rss_bytes()
        sent = send(collector.statsd_port, datagrams, rate, args.lines / rate)
        samples = collector.wait_for(lambda s: s[RECEIVED] >= sent, timeout=60)
        series = samples["popcon_collector_series"]
        time.sleep(1.5)  # one flush
        peak = peak_rss(collector.pid)
        now = collector.rss_bytes()
        collector.stop()
        db_size = sum(p.stat().st_size for p in Path(tmp).iterdir())
    print(
        f"{sent:,} lines, {series:,.0f} series: RSS {base / 1e6:.1f} MB after start-up (baseline),"
        f" peak {peak / 1e6:.1f} MB, {now / 1e6:.1f} MB at the end"
        f" (+{(peak - base) / 1e6:.1f} MB, {(peak - base) / max(series, 1):,.0f} bytes per series);"
        f" store {db_size / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()
