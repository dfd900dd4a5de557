"""The collector's HTTP endpoints: ``/metrics``, ``/healthz`` and a small JSON/CSV API.

``GET /api/v1/popularity``  counts per period and series::

    ?start=2024-05-01&end=2024-06-01   window [start, end): ISO 8601 (UTC unless an offset
                                       is given) or Unix seconds; default the last 30 days
    &aggregate=hour|day|week|month|quarter|year   (default day; weeks start on Monday)
    &namespace=hub-a                   one hub only ("namespace=" alone: the no-hub namespace)
    &metric=imported_package           or user_imported_package, library_used,
                                       processes_reported, or any stored metric name
    &format=json|csv                   (default json)

``GET /api/v1/packages``  totals per series over the same kind of window (no ``aggregate``),
largest first. ``GET /api/v1/namespaces`` lists the namespaces seen. The API reads the store,
so it lags what was received by at most one flush interval; ``/metrics`` includes unflushed
counts.

``Api`` answers each endpoint from plain parameters (``Api.handle(target)`` routes a path
and query to them, for tests); ``collector.web.app`` serves them with tornado, one
``RequestHandler`` per endpoint.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from popularity_contest import names
from popularity_contest.answers import window
from popularity_contest.answers.formats import to_csv
from popularity_contest.collector.store import AGGREGATES, Store, StoreError

DEFAULT_WINDOW = window.parse_age(window.DEFAULT_SINCE)
#: Metrics whose series name a package: the privacy threshold applies to them.
PRIVATE_METRICS = frozenset(
    {names.IMPORTED_PACKAGE, names.USER_IMPORTED_PACKAGE, names.LIBRARY_USED}
)
METRIC_ALIASES = {
    "imported_package": names.IMPORTED_PACKAGE,
    "user_imported_package": names.USER_IMPORTED_PACKAGE,
    "library_used": names.LIBRARY_USED,
    "processes_reported": names.PROCESSES_REPORTED,
}


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes


class BadRequestError(ValueError):
    pass


def parse_time(text: str) -> float:
    """``window.parse_time``, with a bad value as a 400 answer."""
    try:
        return window.parse_time(text)
    except ValueError as error:
        raise BadRequestError(str(error)) from None


def _count(value: float) -> int | float:
    """Whole counts as integers (sample rates can make fractions)."""
    return int(value) if value.is_integer() else value


def _json(status: int, document: object) -> Response:
    body = json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"
    return Response(status, "application/json; charset=utf-8", body)


def _csv(rows: list[dict[str, object]], columns: list[str]) -> Response:
    # formats.to_csv neutralises cells a spreadsheet would run as formulas (csv_cell).
    return Response(200, "text/csv; charset=utf-8", to_csv(rows, columns).encode("utf-8"))


def _columns(rows: list[dict[str, object]], first: list[str], last: list[str]) -> list[str]:
    middle = sorted({key for row in rows for key in row} - set(first) - set(last))
    if "namespace" in middle:
        middle.remove("namespace")
        middle.insert(0, "namespace")
    return first + middle + last


class Api:
    """Routes requests to the store and the metrics registry."""

    def __init__(
        self,
        store: Store,
        registry: CollectorRegistry,
        healthy: Callable[[], str | None] | None = None,
        clock: Callable[[], float] = time.time,
        page: Callable[[str], tuple[int, str, bytes] | None] | None = None,
        *,
        min_processes: int = 1,
        details: Callable[[], dict[str, object]] | None = None,
    ) -> None:
        #: Extra facts for ``/healthz`` (series in use, the cap, a warning).
        self.details = details
        self.store = store
        self.registry = registry
        self.healthy = healthy
        self.clock = clock
        #: Serves what the API does not (e.g. the HTML page at ``/``): (status, type, body)
        #: or None for "not mine".
        self.page = page
        #: Privacy threshold: package series counted fewer times in the window are hidden.
        self.min_processes = min_processes

    def handle(self, target: str, accept: str = "") -> Response:
        parts = urlsplit(target)
        query = parse_qs(parts.query, keep_blank_values=True)
        params = {key: values[-1] for key, values in query.items()}
        try:
            if parts.path == "/metrics":
                return self.metrics(accept)
            if parts.path == "/healthz":
                return self.health()
            if parts.path == "/api/v1/popularity":
                return self.popularity(params)
            if parts.path == "/api/v1/packages":
                return self.packages(params)
            if parts.path == "/api/v1/namespaces":
                return self.namespaces()
            if self.page is not None:
                reply = self.page(target)
                if reply is not None:
                    return Response(*reply)
            if parts.path == "/":
                return _json(
                    200,
                    {
                        "endpoints": [
                            "/metrics",
                            "/healthz",
                            "/api/v1/popularity",
                            "/api/v1/packages",
                            "/api/v1/namespaces",
                        ]
                    },
                )
        except BadRequestError as error:
            return _json(400, {"error": str(error)})
        except StoreError as error:
            return _json(503, {"error": str(error)})
        return _json(404, {"error": f"no such endpoint: {parts.path}"})

    def _private(self, metric: str) -> bool:
        return self.min_processes > 1 and metric in PRIVATE_METRICS

    def metrics(self, accept: str = "") -> Response:
        """``/metrics`` in the format the scraper accepts (``prometheus_client``)."""
        encoder, content_type = choose_encoder(accept)
        return Response(200, content_type, encoder(self.registry))

    def namespaces(self) -> Response:
        return _json(200, {"namespaces": self.store.namespaces()})

    def health(self) -> Response:
        problem = self.healthy() if self.healthy is not None else None
        if problem is None:
            try:
                self.store.namespaces()
            except StoreError as error:
                problem = str(error)
        details = self.details() if self.details is not None else {}
        if problem is not None:
            return _json(503, {"status": "unhealthy", "problem": problem, **details})
        return _json(200, {"status": "ok", **details})

    def _window(self, params: Mapping[str, str]) -> tuple[float, float, str | None, str, str]:
        end = parse_time(params["end"]) if params.get("end") else self.clock()
        start = parse_time(params["start"]) if params.get("start") else end - DEFAULT_WINDOW
        if start >= end:
            raise BadRequestError("start must be before end")
        metric = params.get("metric") or "imported_package"
        metric = METRIC_ALIASES.get(metric, metric)
        output = params.get("format") or "json"
        if output not in ("json", "csv"):
            raise BadRequestError("format must be json or csv")
        return start, end, params.get("namespace"), metric, output

    def popularity(self, params: Mapping[str, str]) -> Response:
        start, end, namespace, metric, output = self._window(params)
        aggregate = params.get("aggregate") or "day"
        if aggregate not in AGGREGATES:
            raise BadRequestError(f"aggregate must be one of {', '.join(AGGREGATES)}")
        counts = self.store.counts(start, end, aggregate, namespace=namespace, metric=metric)
        if self._private(metric):
            keep = {
                tuple(sorted(t.labels.items()))
                for t in self.store.totals(start, end, namespace=namespace, metric=metric)
                if t.value >= self.min_processes
            }
            counts = [c for c in counts if tuple(sorted(c.labels.items())) in keep]
        rows: list[dict[str, object]] = [
            {"period": window.iso(count.period), **count.labels, "count": _count(count.value)}
            for count in counts
        ]
        if output == "csv":
            return _csv(rows, _columns(rows, ["period"], ["count"]))
        return _json(
            200,
            {
                "start": window.iso(start),
                "end": window.iso(end),
                "aggregate": aggregate,
                "metric": metric,
                "namespace": namespace,
                "counts": rows,
            },
        )

    def packages(self, params: Mapping[str, str]) -> Response:
        start, end, namespace, metric, output = self._window(params)
        totals = self.store.totals(start, end, namespace=namespace, metric=metric)
        if self._private(metric):
            totals = [t for t in totals if t.value >= self.min_processes]
        rows: list[dict[str, object]] = [{**t.labels, "count": _count(t.value)} for t in totals]
        if output == "csv":
            return _csv(rows, _columns(rows, [], ["count"]))
        return _json(
            200,
            {
                "start": window.iso(start),
                "end": window.iso(end),
                "metric": metric,
                "namespace": namespace,
                "totals": rows,
            },
        )
