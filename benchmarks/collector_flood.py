"""Collector memory and store size under a flood of distinct names and of long names.

    .venv/bin/python benchmarks/collector_flood.py [--quick]

Three floods, each against a fresh collector, sent as fast as the kernel takes them:

* **distinct**: 150,000 distinct package names (``pkgNNNNNN``), more than the series cap
  (100,000): the cap fills, the rest is refused and counted;
* **long lines**: 20,000 distinct unmapped lines of 60 KB (one per datagram): refused as
  ``line_too_long`` and never cached (before the byte bounds, the line cache grew to 1.2 GB);
* **long names**: 2,000 package names of 240 characters (just under the 250 limit) and
  2,000 of 30,000 characters (refused).

Figures: peak RSS (``VmHWM``) against the RSS right after start-up (the baseline), store
size, and what ``/metrics`` counted.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _collector_harness import RECEIVED, Collector, peak_rss


def blast(port: int, datagrams: list[bytes], pause: float) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    lines = 0
    for index, data in enumerate(datagrams):
        sock.sendto(data, ("127.0.0.1", port))
        lines += data.count(b"\n") + 1
        if index % 20 == 19:
            time.sleep(
                0.002 if len(data) > 10_000 else 0.0005
            )  # let the receiver keep up: we measure memory, not drops
    sock.close()
    return lines


def run(label: str, datagrams: list[bytes], pause: float = 0.002) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        collector = Collector(Path(tmp) / "flood.sqlite3").start()
        time.sleep(0.5)
        base = collector.rss_bytes()
        began = time.monotonic()
        sent = blast(collector.statsd_port, datagrams, pause)
        # Wait until the receiver has taken everything the kernel kept (it may drop some).
        last, samples = -1.0, collector.metrics()
        while samples[RECEIVED] != last:
            last = samples[RECEIVED]
            time.sleep(2.5)  # also a flush or two
            samples = collector.metrics()
        peak = peak_rss(collector.pid)
        collector.stop()
        took = time.monotonic() - began
        size = sum(p.stat().st_size for p in Path(tmp).iterdir() if p.suffix != ".log")
    bad = {
        k.split('"')[1]: v for k, v in samples.items() if k.startswith("popcon_collector_lines_bad")
    }
    print(
        f"{label}: {sent:,} lines sent, {samples[RECEIVED]:,.0f} received, in {took:.0f} s;"
        f" RSS {base / 1e6:.0f} MB at start-up, peak"
        f" {peak / 1e6:.0f} MB (+{(peak - base) / 1e6:.0f} MB); store {size / 1e6:.1f} MB;"
        f" series {samples['popcon_collector_series']:,.0f}, overflow"
        f" {samples.get('popcon_collector_series_overflow_total', 0):,.0f}, refused {bad or 'none'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of each flood")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    prefix = "python_popcon.imported_package."
    names = [f"{prefix}pkg{i:06d}:1|c" for i in range(150_000 // scale)]
    distinct = ["\n".join(names[i : i + 40]).encode() for i in range(0, len(names), 40)]
    run("distinct", distinct, pause=0.03)  # new series cost more than known ones
    filler = "x" * 60_000
    run("long lines", [f"flood.{i}.{filler}:1|c".encode() for i in range(20_000 // scale)])
    long_ok = [f"{prefix}{'n' * 230}{i:05d}:1|c".encode() for i in range(2000 // scale)]
    too_long = [f"{prefix}{'m' * 30_000}{i:05d}:1|c".encode() for i in range(2000 // scale)]
    run("long names", long_ok + too_long)


if __name__ == "__main__":
    main()
