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
largest first.

Both are paged over series, largest first: ``&limit=N`` (default 1000, at most 10000) and
``&offset=K``; JSON answers say ``series`` (how many in all) and ``next_offset`` (null on the
last page). A popularity answer holds at most ``MAX_CELLS`` periods x series: a larger
request is a 400 saying what to narrow. Times must lie between 1970 and 9999. Identical
questions share one answer (computed once, however many ask) for ``CACHE_SECONDS`` or
until the store is next written, whichever comes first; while it is recomputed, the others
asking get the previous one.

``GET /api/v1/namespaces`` lists the namespaces seen. The API reads the store,
so it lags what was received by at most one flush interval; ``/metrics`` includes unflushed
counts.

``Api`` answers each endpoint from plain parameters (``Api.handle(target)`` routes a path
and query to them, for tests); ``collector.web.app`` serves them with tornado, one
``RequestHandler`` per endpoint.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from popularity_contest import names
from popularity_contest.answers import window
from popularity_contest.answers.formats import to_csv
from popularity_contest.collector.store import AGGREGATES, Store, StoreError, Total

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


MAX_CELLS = 100_000  # periods x series in one popularity answer
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
LATEST = 253402300799.0  # 9999-12-31T23:59:59Z
CACHE_SECONDS = 5.0
CACHE_ENTRIES = 256
CACHE_BYTES = 64 * 1024 * 1024
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


class AnswerCache:
    """Answers shared between the clients asking the same question (thread-safe).

    An answer is fresh for ``seconds`` while the store has not been written since
    (``version``, e.g. ``Store.writes``). A question asked by many at once is computed once.
    When an answer is no longer fresh, the first asker recomputes it while the others get the
    previous answer (at most ``stale`` seconds old) instead of waiting in line. Only 200
    answers are kept; the cache is bounded in entries and bytes.
    """

    def __init__(  # noqa: PLR0917 - all optional, named at every call
        self,
        seconds: float = CACHE_SECONDS,
        entries: int = CACHE_ENTRIES,
        size: int = CACHE_BYTES,
        clock: Callable[[], float] = time.monotonic,
        version: Callable[[], int] = lambda: 0,
        stale: float = 30.0,
    ) -> None:
        self.seconds, self.entries, self.size, self.clock = seconds, entries, size, clock
        self.version, self.stale = version, stale
        self._lock = threading.Lock()
        #: key -> (computed at, store version then, answer)
        self._kept: OrderedDict[Hashable, tuple[float, int, Response]] = OrderedDict()
        self._bytes = 0
        self._pending: dict[Hashable, threading.Event] = {}

    def peek(
        self,
        key: Hashable,
        compute: Callable[[], Response] | None = None,
        submit: Callable[[Callable[[], object]], object] | None = None,
    ) -> Response | None:
        """An answer without waiting: a fresh one, or the previous one (at most ``stale``
        seconds old) while it is recomputed; with ``compute`` and ``submit`` the
        recomputation is started in the background. None: ask ``get``."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is None:
                return None
            age = self.clock() - kept[0]
            if age < self.seconds and kept[1] == self.version():
                return kept[2]
            if age >= self.stale:
                return None
            if key not in self._pending:
                if compute is None or submit is None:
                    return None
                self._pending[key] = threading.Event()
                start = True
            else:
                start = False
        if start:
            submit(lambda: self._refresh(key, compute))  # type: ignore[arg-type, misc]
        return kept[2]

    def _refresh(self, key: Hashable, compute: Callable[[], Response]) -> None:
        with self._lock:
            done = self._pending.pop(key, None)
        if done is not None:
            done.set()
        try:
            self.get(key, compute)
        except Exception:  # a failed refresh: the next asker computes and sees the error
            return

    def get(self, key: Hashable, compute: Callable[[], Response]) -> Response:
        while True:
            with self._lock:
                kept = self._kept.get(key)
                now = self.clock()
                if kept is not None and now - kept[0] < self.seconds and kept[1] == self.version():
                    self._kept.move_to_end(key)
                    return kept[2]
                waiting = self._pending.get(key)
                if waiting is not None and kept is not None and now - kept[0] < self.stale:
                    return kept[2]  # being recomputed: the previous answer meanwhile
                if waiting is None:
                    done = self._pending[key] = threading.Event()
            if waiting is None:
                break
            waiting.wait(60)  # then ask again: kept, or computed by us
        version = self.version()
        try:
            response = compute()
        finally:
            with self._lock:
                self._pending.pop(key, None)
            done.set()
        if response.status == 200 and len(response.body) <= self.size // 4:
            with self._lock:
                old = self._kept.pop(key, None)
                if old is not None:
                    self._bytes -= len(old[2].body)
                self._kept[key] = (self.clock(), version, response)
                self._bytes += len(response.body)
                while len(self._kept) > self.entries or self._bytes > self.size:
                    _, (_, _, evicted) = self._kept.popitem(last=False)
                    self._bytes -= len(evicted.body)
        return response


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
        page: Callable[[str], tuple[int, str, bytes] | None] | None = None,
        *,
        min_processes: int = 1,
        details: Callable[[], dict[str, object]] | None = None,
    ) -> None:
        #: Extra facts for ``/healthz`` (series in use, the cap, a warning).
        self.details = details
        self.cache = AnswerCache(version=lambda: store.writes)
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
        return start, end, params.get("namespace"), metric, output

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
                f" (day, week, month), choose a namespace, or fewer series per page"
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
                "namespace": namespace,
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
                "namespace": namespace,
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
