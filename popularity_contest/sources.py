"""Where ``report``, ``unused`` and the page read counts from: the store or a Prometheus server.

Both sources answer the same two questions for a window ``[start, end)``:

* ``packages(window, namespace)``: ``{(namespace, package): processes that imported it}``
* ``processes(window, namespace)``: ``{namespace: processes reported}``

``namespace=None`` means every hub. The store sums its hourly/daily buckets; Prometheus is
asked with the dashboard's own PromQL (``PROMQL`` below, with the Grafana variables
``$hub`` and ``$__range`` substituted the way Grafana does), through its HTTP API with
``urllib`` so no client library is needed. The two must agree: the dashboard and
``report --prometheus`` give the same numbers for the same range.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from popularity_contest.collector.store import (
    IMPORTED_PACKAGE,
    PROCESSES_REPORTED,
    Store,
    StoreError,
    parse_time,
)


def counted(metric: str, window: str) -> str:
    """Per series, what the counter gained in the ``window`` ending at the query's time.

    The dashboard's counting expression (deploy/grafana/build_dashboard.py imports it),
    character for character: tests/unit/test_report_promql.py fails if they drift apart.
    Not ``increase()``, which extrapolates and misses the first count of a series born in
    the window (a package imported once would show as 0). Per series, the first that
    applies: existed at the start and never went down: last minus start (exact); born in
    the window: its last value (exact); went down (the exporter restarted): its last value,
    or what it gained since its first sample in the window (lower bounds, never inflated,
    never negative).
    """
    series = f'{metric}{{namespace=~"$hub"}}'
    last = f"last_over_time({series}[{window}])"
    start = f"({series} offset {window} or last_over_time({series}[{window}] offset {window}))"
    went_down = f"resets({series}[{window}]) > 0"
    return (
        f"((({last} - {start}) >= 0) unless ({went_down}))"
        f" or ({last} unless {start})"
        f" or ({last} and ({went_down}))"
        f" or ({last} - min_over_time({series}[{window}]))"
    )


#: The queries ``report`` and ``unused`` send, as Grafana templates (``$hub``,
#: ``$__range``): the dashboard's "Top packages" grouped by hub as well, and its
#: "Processes per hub" without the sort.
PROMQL = {
    "packages": f"sum by (namespace, package) ({counted(IMPORTED_PACKAGE, '$__range')})",
    "processes": f"sum by (namespace) ({counted(PROCESSES_REPORTED, '$__range')})",
}

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class SourceError(Exception):
    """Counts could not be read; the message says from where and why."""


@dataclass(frozen=True)
class Window:
    start: float  # Unix seconds, included
    end: float  # Unix seconds, excluded

    @property
    def seconds(self) -> int:
        return max(1, round(self.end - self.start))


def parse_age(text: str) -> float:
    """Seconds in ``90m``, ``12h``, ``30d``, ``8w`` (or ``45s``)."""
    match = _AGE.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"not an age like 90m, 12h, 30d or 8w: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def window(
    since: str | None, start: str | None, end: str | None, now: float | None = None
) -> Window:
    """The window the CLI flags describe: ``--start`` wins over ``--since``; end is now."""
    last = parse_time(end) if end else (time.time() if now is None else now)
    first = parse_time(start) if start else last - parse_age(since or "30d")
    if first >= last:
        raise ValueError("the window's start must be before its end")
    return Window(first, last)


def iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, timezone.utc).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


class Source(Protocol):
    def packages(self, span: Window, namespace: str | None) -> dict[tuple[str, str], float]: ...

    def processes(self, span: Window, namespace: str | None) -> dict[str, float]: ...

    def close(self) -> None: ...


class StoreSource:
    """Counts from the embedded collector's SQLite store."""

    def __init__(self, store: Store, *, owned: bool = False) -> None:
        self.store = store
        self._owned = owned

    @classmethod
    def open(cls, path: str) -> StoreSource:
        try:
            return cls(Store.open(path, create=False), owned=True)
        except StoreError as error:
            raise SourceError(str(error)) from None

    def packages(self, span: Window, namespace: str | None) -> dict[tuple[str, str], float]:
        try:
            totals = self.store.totals(span.start, span.end, namespace, IMPORTED_PACKAGE)
        except StoreError as error:
            raise SourceError(str(error)) from None
        found: dict[tuple[str, str], float] = {}
        for total in totals:
            key = (total.labels.get("namespace", ""), total.labels.get("package", ""))
            found[key] = found.get(key, 0.0) + total.value
        return found

    def processes(self, span: Window, namespace: str | None) -> dict[str, float]:
        try:
            totals = self.store.totals(span.start, span.end, namespace, PROCESSES_REPORTED)
        except StoreError as error:
            raise SourceError(str(error)) from None
        found: dict[str, float] = {}
        for total in totals:
            key = total.labels.get("namespace", "")
            found[key] = found.get(key, 0.0) + total.value
        return found

    def close(self) -> None:
        if self._owned:
            self.store.close()


def promql(name: str, span: Window, namespace: str | None) -> str:
    """The dashboard's query ``name`` with its variables substituted as Grafana does."""
    selected = ".*" if namespace is None else re.escape(namespace).replace("\\", "\\\\")
    return PROMQL[name].replace("$hub", selected).replace("$__range", f"{span.seconds}s")


class PrometheusSource:
    """Counts from a Prometheus server's HTTP API (``/api/v1/query`` at the window's end)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise SourceError(f"{url}: a Prometheus URL starts with http:// or https://")
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query(self, expression: str, at: float) -> list[dict[str, object]]:
        data = urllib.parse.urlencode({"query": expression, "time": f"{at:.3f}"}).encode()
        request = urllib.request.Request(  # noqa: S310 - the operator's own Prometheus URL
            self.url + "/api/v1/query",
            data=data,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                document = json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:300]
            raise SourceError(f"{self.url}: HTTP {error.code}: {detail}") from None
        except (OSError, ValueError) as error:
            raise SourceError(f"{self.url}: {error}") from None
        if not isinstance(document, dict) or document.get("status") != "success":
            raise SourceError(f"{self.url}: query failed: {str(document)[:300]}")
        result = document.get("data", {}).get("result", [])
        return result if isinstance(result, list) else []

    def _vector(
        self, name: str, span: Window, namespace: str | None
    ) -> list[tuple[Mapping[str, str], float]]:
        rows: list[tuple[Mapping[str, str], float]] = []
        for sample in self.query(promql(name, span, namespace), span.end):
            metric = sample.get("metric", {})
            value = sample.get("value", [0, "0"])
            if isinstance(metric, dict) and isinstance(value, list) and len(value) == 2:
                rows.append((metric, float(value[1])))
        return rows

    def packages(self, span: Window, namespace: str | None) -> dict[tuple[str, str], float]:
        found: dict[tuple[str, str], float] = {}
        for metric, value in self._vector("packages", span, namespace):
            key = (metric.get("namespace", ""), metric.get("package", ""))
            found[key] = found.get(key, 0.0) + value
        return found

    def processes(self, span: Window, namespace: str | None) -> dict[str, float]:
        found: dict[str, float] = {}
        for metric, value in self._vector("processes", span, namespace):
            key = metric.get("namespace", "")
            found[key] = found.get(key, 0.0) + value
        return found

    def close(self) -> None:
        return


def open_source(db: str | None, prometheus: str | None) -> Source:
    """The source the ``--db``/``--prometheus`` flags name (default: the collector's store)."""
    if prometheus:
        return PrometheusSource(prometheus)
    if db:
        return StoreSource.open(db)
    from popularity_contest import config

    return StoreSource.open(config.default_db_path())
