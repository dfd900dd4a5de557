"""Shared pieces of the collector benchmarks: a collector subprocess and a load generator.

Not a benchmark itself. The collector runs as ``python -m popularity_contest serve`` on
OS-assigned ports; figures come from its ``/metrics`` and ``/proc/<pid>``.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

READY = re.compile(r"listening statsd=(?:127\.0\.0\.1:(\d+)|off) http=127\.0\.0\.1:(\d+)")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Collector:
    """``popularity-contest serve`` in a subprocess, ready when the listening line appears."""

    def __init__(
        self, db: Path, env: dict[str, str] | None = None, extra: list[str] | None = None
    ) -> None:
        self.db = db
        self.extra = list(extra or [])
        self.env = {**os.environ, **(env or {})}
        self.log: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self.statsd_port = self.http_port = 0

    def start(self, timeout: float = 20.0) -> Collector:
        command = [sys.executable, "-m", "popularity_contest", "serve"]
        command += ["--statsd", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db", str(self.db)]
        command += self.extra
        self.process = subprocess.Popen(
            command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=self.env
        )
        ready = threading.Event()
        threading.Thread(target=self._read_log, args=(ready,), daemon=True).start()
        if not ready.wait(timeout):
            self.process.kill()
            raise RuntimeError("collector did not start:\n" + "".join(self.log))
        return self

    def _read_log(self, ready: threading.Event) -> None:
        assert self.process is not None
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)
            found = READY.search(line)
            if found:
                self.statsd_port = int(found.group(1) or 0)
                self.http_port = int(found.group(2))
                ready.set()
        ready.set()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def get(self, path: str) -> str:
        url = f"http://127.0.0.1:{self.http_port}{path}"
        with urllib.request.urlopen(url, timeout=10) as response:
            text: str = response.read().decode("utf-8")
        return text

    def metrics(self) -> dict[str, float]:
        """Every sample, keyed ``name{a="b",...}`` (labels sorted) or ``name``."""
        samples = {}
        for family in text_string_to_metric_families(self.get("/metrics")):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return samples

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def wait_for(self, predicate: object, timeout: float = 30.0) -> dict[str, float]:
        """Poll /metrics until ``predicate(samples)`` is true."""
        deadline = time.monotonic() + timeout
        while True:
            samples = self.metrics()
            if predicate(samples):  # type: ignore[operator]
                return samples
            if time.monotonic() > deadline:
                raise TimeoutError("condition not reached")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout)


def report_datagrams(count: int, seed: int = 0, names: int = 300, hubs: int = 5) -> list[bytes]:
    """``count`` datagrams of ~30 lines each, like one process's report (< 1,500 bytes)."""
    rng = random.Random(seed)
    packages = [f"package{i:04d}" for i in range(names)]
    datagrams = []
    for _ in range(count):
        hub = rng.randrange(hubs)
        prefix = f"python_popcon.hub.hub{hub}"
        lines = [f"{prefix}.processes_reported:1|c"]
        lines += [f"{prefix}.imported_package.{p}:1|c" for p in rng.sample(packages, 29)]
        datagrams.append("\n".join(lines).encode("ascii"))
    return datagrams


def lines_in(datagrams: list[bytes]) -> int:
    return sum(d.count(b"\n") + 1 for d in datagrams)


def send(port: int, datagrams: list[bytes], rate_lines: float | None, seconds: float) -> int:
    """Send datagrams in a loop for ``seconds``, paced to ``rate_lines``/s or flat out.

    Returns the number of lines sent. Pacing sends a burst every 5 ms, so the rate holds even
    when one ``time.sleep`` overshoots.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    address = ("127.0.0.1", port)
    per_datagram = lines_in(datagrams[:100]) / min(len(datagrams), 100)
    sent_lines = 0
    index = 0
    total = len(datagrams)
    start = time.monotonic()
    end = start + seconds
    sendto = sock.sendto
    if rate_lines is None:
        while time.monotonic() < end:
            for _ in range(100):
                data = datagrams[index % total]
                sendto(data, address)
                sent_lines += data.count(b"\n") + 1
                index += 1
        return sent_lines
    datagram_rate = rate_lines / per_datagram
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = int((now - start) * datagram_rate) - index
        for _ in range(due):
            data = datagrams[index % total]
            sendto(data, address)
            sent_lines += data.count(b"\n") + 1
            index += 1
        time.sleep(0.005)
    return sent_lines


#: The collector's count of statsd lines received (names.LINES_RECEIVED).
RECEIVED = "popcon_collector_lines_received_total"


def peak_rss(pid: int) -> int:
    """Peak resident memory of process ``pid`` in bytes (Linux ``VmHWM``), 0 if unknown."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0
