"""Collector durability: what is counted before SIGTERM / SIGKILL is what the store keeps.

    .venv/bin/python benchmarks/collector_durability.py [--rate 50000] [--seconds 3] [--quick]

A paced sender streams report lines (every line adds 1) while the collector is signalled
mid-stream. SIGTERM: the collector logs how many lines it had received and stored; the
store, reopened, must hold exactly that many. SIGKILL: the last ``/metrics`` reading of
lines received is taken just before the kill; the loss (received minus stored) must stay
within one flush interval (1 s) of traffic (plus the few milliseconds between that reading
and the kill). Then the collector restarts on the same file
and its ``/metrics`` totals continue from the stored ones.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _collector_harness import RECEIVED, Collector, report_datagrams, send

from popularity_contest.collector.store import Store

STOPPED = re.compile(r"stopped: (\d+) lines received, (\d+) stored")


def stored_lines(db: Path) -> float:
    with Store.open(db, create=False) as store:
        return sum(total.value for total in store.series_totals())


def scenario(sig: int, rate: float, seconds: float, db: Path) -> dict[str, float]:
    collector = Collector(db).start()
    datagrams = report_datagrams(500, seed=sig)
    port = collector.statsd_port
    sender = threading.Thread(target=send, args=(port, datagrams, rate, seconds + 5))
    sender.daemon = True
    sender.start()
    collector.wait_for(lambda s: s[RECEIVED] >= rate * seconds)
    received_before = collector.metrics()[RECEIVED]
    code = collector.stop(sig)
    if sig == signal.SIGTERM:
        found = STOPPED.search("".join(collector.log))
        assert found, "".join(collector.log)
        received_before = float(found.group(1))
    stored = stored_lines(db)
    # Restart on the same file: totals continue.
    again = Collector(db).start()
    exposed = sum(v for k, v in again.metrics().items() if k.startswith("python_popcon_"))
    again.stop()
    return {"received": received_before, "stored": stored, "exposed": exposed, "exit": code}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=50_000, help="lines/s sent")
    parser.add_argument("--seconds", type=float, default=3, help="traffic before the signal")
    parser.add_argument("--quick", action="store_true", help="1 s of traffic")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 1
    with tempfile.TemporaryDirectory() as tmp:
        term = scenario(signal.SIGTERM, args.rate, args.seconds, Path(tmp) / "term.sqlite3")
        kill = scenario(signal.SIGKILL, args.rate, args.seconds, Path(tmp) / "kill.sqlite3")
    print(
        f"SIGTERM mid-stream at {args.rate:,.0f} lines/s: received {term['received']:,.0f},"
        f" stored {term['stored']:,.0f} (difference {term['received'] - term['stored']:,.0f}),"
        f" exit {term['exit']}; after restart /metrics shows {term['exposed']:,.0f}"
    )
    lost = kill["received"] - kill["stored"]
    print(
        f"SIGKILL mid-stream: received {kill['received']:,.0f} at the last scrape (ms before"
        f" the kill), stored {kill['stored']:,.0f}: lost ~{max(lost, 0):,.0f} lines"
        f" = ~{max(lost, 0) / args.rate:.2f} s of traffic (bound: 1 flush interval = 1 s);"
        f" after restart /metrics shows {kill['exposed']:,.0f}"
    )


if __name__ == "__main__":
    main()
