"""The collector's HTTP endpoints: ``/metrics``, ``/healthz`` and a small JSON/CSV API.

``GET /api/v1/popularity``  counts per period and series::

    ?start=2024-05-01&end=2024-06-01   window [start, end): ISO 8601 (UTC unless an offset
                                       is given) or Unix seconds; default the last 30 days
    &aggregate=hour|day|week|month|quarter|year   (default day; weeks start on Monday)
    &hub=hub-a                         one hub only ("hub=" alone: processes with no hub); the
                                       hub is the series' `namespace` label
    &cluster=east                      one archived source only (the `cluster` label)
    &metric=imported_package           or user_imported_package, directly_imported_package,
                                       directly_imported_user_package, library_used,
                                       processes_reported, or any stored metric name
    &format=json|csv                   (default json)

``GET /api/v1/packages``  totals per series over the same kind of window (no ``aggregate``),
largest first.

Both are paged over series, largest first: ``&limit=N`` (default 1000, at most 10000) and
``&offset=K``; JSON answers say ``series`` (how many in all) and ``next_offset`` (null on the
last page). A popularity answer holds at most ``MAX_CELLS`` periods x series: a larger
request is a 400 saying what to narrow. Times must lie between 1970 and 9999. Identical
questions share one answer (computed once, however many ask) for ``CACHE_SECONDS`` or
until the store is next written, whichever comes first; while it is recomputed, the others
asking get the previous one.

``GET /api/v1/hubs`` lists the hubs seen (``/api/v1/namespaces``, the same, is kept). The API
reads the store, so it lags what was received by at most one flush interval; ``/metrics``
includes unflushed counts.

``Api`` answers each endpoint from plain parameters (``Api.handle(target)`` routes a path
and query to them, for tests); ``collector.web.app`` serves them with tornado, one
``RequestHandler`` per endpoint.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from popularity_contest import names
from popularity_contest.answers import window
from popularity_contest.answers.formats import to_csv
from popularity_contest.collector.exposition import HealthDetails, health_status
from popularity_contest.collector.store import AGGREGATES, Store, StoreError, Total
from popularity_contest.collector.web.cache import AnswerCache

DEFAULT_WINDOW = window.parse_age(window.DEFAULT_SINCE)
#: Metrics whose series name a package: the privacy threshold applies to them.
PRIVATE_METRICS = frozenset(
    {
        names.IMPORTED_PACKAGE,
        names.USER_IMPORTED_PACKAGE,
        names.LIBRARY_USED,
        names.DIRECTLY_IMPORTED_PACKAGE,
        names.DIRECTLY_IMPORTED_USER_PACKAGE,
    }
)
METRIC_ALIASES = {
    "imported_package": names.IMPORTED_PACKAGE,
    "user_imported_package": names.USER_IMPORTED_PACKAGE,
    "library_used": names.LIBRARY_USED,
    "processes_reported": names.PROCESSES_REPORTED,
    "directly_imported_package": names.DIRECTLY_IMPORTED_PACKAGE,
    "directly_imported_user_package": names.DIRECTLY_IMPORTED_USER_PACKAGE,
}


@dataclass(frozen=True)
class Response:
    """An answer: HTTP status, ``Content-Type`` and the encoded body."""

    status: int
    content_type: str
    body: bytes


class BadRequestError(ValueError):
    pass


MAX_CELLS = 100_000  # periods x series in one popularity answer
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
LATEST = 253402300799.0  # 9999-12-31T23:59:59Z
#: Upper bounds of the seconds in one period, to count periods before asking the store.
_PERIOD_SECONDS = {
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
    "month": 28 * 86400,
    "quarter": 89 * 86400,
    "year": 365 * 86400,
}


def parse_time(text: str, name: str = "time") -> float:
    """``window.parse_time`` between 1970 and 9999, with a bad value as a 400 answer."""
    try:
        moment = window.parse_time(text)
    except (ValueError, OverflowError) as error:
        raise BadRequestError(f"{name}: {error}") from None
    if not 0 <= moment <= LATEST:
        raise BadRequestError(f"{name}: must lie between 1970-01-01 and 9999-12-31: {text!r}")
    return moment


def _integer(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = params.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise BadRequestError(f"{name}: a whole number from {low} to {high}, not {text!r}")
    return int(text)


def periods_in(start: float, end: float, aggregate: str) -> int:
    """At most how many periods of ``aggregate`` a window ``[start, end)`` touches."""
    return math.ceil((end - start) / _PERIOD_SECONDS[aggregate]) + 1


def _count(value: float) -> int | float:
    """Whole counts as integers (sample rates can make fractions)."""
    return int(value) if value.is_integer() else value


def _json(status: int, document: object) -> Response:
    # Compact: the C encoder (an indent would switch to the pure-Python one, several times
    # slower on large answers).
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
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
        page: Callable[[str], Response | None] | None = None,
        *,
        min_processes: int = 1,
        details: Callable[[], HealthDetails | None] | None = None,
    ) -> None:
        #: Extra facts for ``/healthz`` (series in use, the cap, a warning).
        self.details = details
        self.cache: AnswerCache[Response] = AnswerCache(version=lambda: store.writes)
        self.store = store
        self.registry = registry
        self.healthy = healthy
        self.clock = clock
        #: Serves what the API does not (e.g. ``page.respond`` for ``/``): a response, or
        #: None for "not mine".
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
            if parts.path in ("/api/v1/hubs", "/api/v1/namespaces"):
                return self.namespaces()
            if self.page is not None:
                reply = self.page(target)
                if reply is not None:
                    return reply
            if parts.path == "/":
                return _json(
                    200,
                    {
                        "endpoints": [
                            "/metrics",
                            "/healthz",
                            "/api/v1/popularity",
                            "/api/v1/packages",
                            "/api/v1/hubs",
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
        """The hubs seen, under both names (``hubs``; ``namespaces`` for older clients)."""
        seen = self.store.namespaces()
        return _json(200, {"hubs": seen, "namespaces": seen})

    def health(self) -> Response:
        problem = self.healthy() if self.healthy is not None else None
        if problem is None:
            try:
                self.store.namespaces()
            except StoreError as error:
                problem = str(error)
        details = self.details() if self.details is not None else None
        document = health_status(problem) if details is None else details.body(problem)
        return _json(200 if problem is None else 503, document)

    def _window(self, params: Mapping[str, str]) -> tuple[float, float, str | None, str, str]:
        end = parse_time(params["end"], "end") if params.get("end") else self.clock()
        start = (
            parse_time(params["start"], "start")
            if params.get("start")
            else max(0.0, end - DEFAULT_WINDOW)
        )
        if start >= end:
            raise BadRequestError("start must be before end")
        metric = params.get("metric") or "imported_package"
        metric = METRIC_ALIASES.get(metric, metric)
        output = params.get("format") or "json"
        if output not in ("json", "csv"):
            raise BadRequestError("format must be json or csv")
        hub = params.get("hub", params.get("namespace"))  # `namespace=`: the label's name
        return start, end, hub, metric, output

    def _key(self, endpoint: str, params: Mapping[str, str]) -> tuple[Hashable, ...]:
        """The cache key of a question: its parameters, the window to the hour (buckets
        start on hours, so windows that round to the same hours hold the same buckets)."""
        start, end, namespace, metric, output = self._window(params)
        hours = (-(-int(start) // 3600), -(-int(end) // 3600))
        rest = tuple(sorted((k, v) for k, v in params.items() if k not in ("start", "end")))
        return (endpoint, hours, namespace, metric, output, rest)

    def _page(
        self,
        params: Mapping[str, str],
        start: float,
        end: float,
        namespace: str | None,
        metric: str,
    ) -> tuple[list[Total], int, int, int]:
        """The series of this page, largest first: (page, all series, limit, offset)."""
        limit = _integer(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = _integer(params, "offset", 0, 0, 10**9)
        totals = self.store.totals(start, end, namespace=namespace, metric=metric)
        cluster = params.get("cluster")
        if cluster is not None:  # one archived source (`popularity-contest archive`)
            totals = [t for t in totals if t.labels.get(names.CLUSTER_LABEL, "") == cluster]
        if self._private(metric):
            totals = [t for t in totals if t.value >= self.min_processes]
        return totals[offset : offset + limit], len(totals), limit, offset

    def popularity(self, params: Mapping[str, str]) -> Response:
        """Counts per period and series (see the module's docstring); cached briefly."""
        return self.cache.get(self._key("popularity", params), lambda: self._popularity(params))

    def packages(self, params: Mapping[str, str]) -> Response:
        """Totals per series (see the module's docstring); cached briefly."""
        return self.cache.get(self._key("packages", params), lambda: self._packages(params))

    def shared(
        self,
        endpoint: str,
        params: Mapping[str, str],
        submit: Callable[[Callable[[], object]], object] | None = None,
    ) -> Response | None:
        """The answer kept for this question, without waiting (None: call the endpoint);
        ``submit`` runs a refresh of an answer past its freshness in the background."""
        compute = self._popularity if endpoint == "popularity" else self._packages
        try:
            return self.cache.peek(self._key(endpoint, params), lambda: compute(params), submit)
        except BadRequestError:
            return None

    def _popularity(self, params: Mapping[str, str]) -> Response:
        start, end, namespace, metric, output = self._window(params)
        aggregate = params.get("aggregate") or "day"
        if aggregate not in AGGREGATES:
            raise BadRequestError(f"aggregate must be one of {', '.join(AGGREGATES)}")
        page, series, limit, offset = self._page(params, start, end, namespace, metric)
        periods = periods_in(start, end, aggregate)
        if periods * len(page) > MAX_CELLS:
            raise BadRequestError(
                f"too large: up to {periods} periods x {len(page)} series, more than"
                f" {MAX_CELLS} values: narrow the window (start, end), take a coarser aggregate"
                f" (day, week, month), choose a hub, or fewer series per page"
                f" (limit, offset)"
            )
        counts = (
            self.store.counts(
                start,
                end,
                aggregate,
                namespace=namespace,
                metric=metric,
                only=[t.labels for t in page],
            )
            if page
            else []
        )
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
                "hub": namespace,
                **_paging(series, limit, offset),
                "counts": rows,
            },
        )

    def _packages(self, params: Mapping[str, str]) -> Response:
        start, end, namespace, metric, output = self._window(params)
        page, series, limit, offset = self._page(params, start, end, namespace, metric)
        rows: list[dict[str, object]] = [{**t.labels, "count": _count(t.value)} for t in page]
        if output == "csv":
            return _csv(rows, _columns(rows, [], ["count"]))
        return _json(
            200,
            {
                "start": window.iso(start),
                "end": window.iso(end),
                "metric": metric,
                "hub": namespace,
                **_paging(series, limit, offset),
                "totals": rows,
            },
        )


def _paging(series: int, limit: int, offset: int) -> dict[str, object]:
    following = offset + limit
    return {
        "series": series,
        "limit": limit,
        "offset": offset,
        "next_offset": following if following < series else None,
    }
