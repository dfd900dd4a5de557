"""A real Prometheus server for tests, and the counting tables both it and promtool evaluate.

``PrometheusServer`` writes a config that scrapes the given targets every second, starts the
``prometheus`` binary (Debian package ``prometheus``), waits for ``/-/ready``, and answers
PromQL through the HTTP API (``query`` and ``query_range``), so the dashboard's expressions
are checked by the real query engine rather than by a re-implementation.

``SITUATIONS`` are the test groups of counting_test.yaml (``promtool test rules`` input for
``popularity_contest.answers.promql.counted``), read here so that a real Prometheus can be
loaded with the same histories (``openmetrics``) and asked the same questions.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.collectorkit import free_port, stop_process, wait_until

SCRAPE_INTERVAL = 1.0

COUNTING_TESTS = Path(__file__).with_name("counting_test.yaml")
COUNTING: dict[str, Any] = yaml.safe_load(COUNTING_TESTS.read_text())
SITUATIONS: dict[str, dict[str, Any]] = {group["name"]: group for group in COUNTING["tests"]}
_DURATION = re.compile(r"(\d+)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def seconds(duration: str) -> int:
    """``20m30s`` -> 1230 (the PromQL durations the tables use)."""
    assert _DURATION.sub("", duration) == "", duration
    return sum(int(n) * _SECONDS[unit] for n, unit in _DURATION.findall(duration))


def expand(values: str) -> list[float | None]:
    """promtool's series notation; ``None`` is no sample (``_``) or a staleness marker."""
    samples: list[float | None] = []
    for token in values.split():
        if token in {"_", "stale"}:
            samples.append(None)
        elif match := re.fullmatch(r"_x(\d+)", token):
            samples.extend([None] * int(match.group(1)))
        elif match := re.fullmatch(r"(\d+)(?:([+-])(\d+))?x(\d+)", token):
            start, sign, step, times = match.groups()
            delta = int(step or 0) * (-1 if sign == "-" else 1)
            samples.extend(float(int(start) + i * delta) for i in range(int(times) + 1))
        else:
            samples.append(float(token))
    return samples


def metric_of(series: str) -> str:
    return series.split("{", 1)[0]


def labels_of(series: str) -> str:
    """``name{a="x", b="y"}`` -> ``{a="x", b="y"}``, promtool's form of the result's labels."""
    return "{" + series.split("{", 1)[1]


def label_dict(labels: str) -> dict[str, str]:
    """``{a="x", b="y"}`` (or ``name{...}``) -> ``{"a": "x", "b": "y"}``."""
    return dict(_LABEL.findall(labels))


def http_get(url: str, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback URL)
        body: bytes = response.read()
        return body


class PrometheusServer:
    """One Prometheus process, ready; stop it with ``close`` (or use it in a ``with``)."""

    def __init__(self, binary: str, workdir: Path, targets: Mapping[str, str]) -> None:
        """``targets`` maps a job name to its ``host:port``."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {
                "scrape_interval": f"{SCRAPE_INTERVAL:g}s",
                "scrape_timeout": f"{SCRAPE_INTERVAL:g}s",
                "evaluation_interval": "1m",
            },
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [address]}]}
                for job, address in targets.items()
            ],
        }
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(json.dumps(config))  # JSON is YAML
        self.log_path = workdir / "prometheus.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(self._ready, "Prometheus /-/ready")
        except BaseException:
            self.close()
            raise

    def _ready(self) -> bool | None:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{self.log_path.read_text()}")
        try:
            http_get(f"{self.url}/-/ready", timeout=1)
        except (OSError, urllib.error.URLError):
            return None
        return True

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            body = http_get(url)
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{path} {params}: {error.read().decode()}") from None
        reply = json.loads(body)
        assert reply["status"] == "success", reply
        return reply["data"]

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        data = self.api("query", query=expr, time=f"{at:.3f}")
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        data = self.api(
            "query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step:g}"
        )
        result: list[dict[str, Any]] = data["result"]
        return result

    def scraped_after(self, job: str, moment: float, health: str = "up") -> float | None:
        """The time of ``job``'s last scrape if it started after ``moment`` with ``health``.

        ``health`` is ``up`` (succeeded) or ``down`` (failed: Prometheus then marks the
        target's series stale).
        """
        for target in self.api("targets")["activeTargets"]:
            if target["labels"].get("job") != job or target["health"] != health:
                continue
            last = target["lastScrape"]
            # RFC 3339 with nanoseconds; the API also reports the scrape's duration.
            stamp = _parse_time(last)
            if stamp > moment:
                return stamp
        return None

    def wait_for_scrape(self, job: str, after: float | None = None, health: str = "up") -> float:
        """Wait for a scrape of ``job`` (``health``: see ``scraped_after``) that began after
        ``after`` (default: now)."""
        moment = time.time() if after is None else after
        return wait_until(
            lambda: self.scraped_after(job, moment, health), f"a scrape of {job} ({health})"
        )

    def close(self) -> None:
        stop_process(self.process)
        self._log.close()

    def __enter__(self) -> PrometheusServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse_time(text: str) -> float:
    """Seconds since the epoch from Prometheus' RFC 3339 time (nanoseconds, UTC 'Z' or offset)."""
    from datetime import datetime

    head, _, rest = text.partition(".")
    fraction = ""
    zone = rest
    for i, char in enumerate(rest):
        if not char.isdigit():
            fraction, zone = rest[:i], rest[i:]
            break
    zone = "+00:00" if zone == "Z" else zone
    base = datetime.fromisoformat(head + zone).timestamp()
    return base + (float("0." + fraction) if fraction else 0.0)
