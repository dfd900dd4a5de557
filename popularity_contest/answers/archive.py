"""``popularity-contest archive``: daily counts from Prometheus-compatible APIs into the store.

Prometheus keeps weeks or months; funding reports and "what did nobody use this year" need
years. A run reads, per source (Prometheus, Thanos Query, Mimir, VictoriaMetrics: anything
that answers ``/api/v1/query_range``), one count per series and *complete* UTC day, with the
dashboard's own counting expression (:func:`popularity_contest.answers.promql.counted` over
``1d``), and writes them into the store as daily buckets labelled ``cluster=<source name>``.
``report``, ``unused``, the page and the API then read them like any other counts.

Each day is written in one transaction together with the source's checkpoint (the last day
archived), so a run can be interrupted anywhere and the next one resumes after the last
complete day written; a day is never written twice. A first run starts ``backfill`` before
today (by default far enough for any retention: days Prometheus no longer holds read as
empty). An unreachable source raises :class:`~popularity_contest.answers.sources.SourceError`
and its checkpoint stays where it was.

A series that first appears on the first day a source still holds counts its whole value on
that day, which is the counting expression's rule for a new series: on a first run against a
Prometheus whose retention began after the reporters did, the first archived day also holds
what happened before it.
"""

from __future__ import annotations

import json
import math
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from popularity_contest import names
from popularity_contest.answers.promql import counted
from popularity_contest.answers.sources import SourceError
from popularity_contest.answers.window import iso
from popularity_contest.collector.store import DAY, SeriesKey, Store, series_key

#: The label that tells archived sources apart.
CLUSTER_LABEL = names.CLUSTER_LABEL

#: What is archived: each metric with the labels its counts are kept by.
ARCHIVED: tuple[tuple[str, tuple[str, ...]], ...] = (
    (names.PROCESSES_REPORTED, (names.HUB_LABEL,)),
    (names.IMPORTED_PACKAGE, (names.HUB_LABEL, "package")),
    (names.USER_IMPORTED_PACKAGE, (names.HUB_LABEL, "package")),
    (names.DIRECTLY_IMPORTED_PACKAGE, (names.HUB_LABEL, "package")),
    (names.DIRECTLY_IMPORTED_USER_PACKAGE, (names.HUB_LABEL, "package")),
    (names.LIBRARY_USED, (names.HUB_LABEL, "distribution")),
)

#: Days asked for in one range query (Prometheus refuses more than 11,000 points a series).
CHUNK_DAYS = 31
#: A first run's default reach: older days that the source no longer holds read as empty.
DEFAULT_BACKFILL_DAYS = 5 * 366


@dataclass(frozen=True)
class PrometheusAPI:
    """One source: a name (its ``cluster`` label), a base URL and how to authenticate.

    ``headers`` are sent with every request (``Name: value``, e.g. a tenant header for
    Mimir); ``bearer_token_file`` is read at each request (Kubernetes rotates tokens);
    ``ca_file`` verifies an HTTPS server signed by a private CA.
    """

    name: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    bearer_token_file: str | None = None
    ca_file: str | None = None
    timeout: float = 120.0

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise SourceError(f"{self.url}: a Prometheus URL starts with http:// or https://")
        if not self.name or not all(c.isalnum() or c in "-_." for c in self.name):
            raise SourceError(f"source name {self.name!r}: letters, digits, '-', '_' and '.' only")

    def _headers(self) -> dict[str, str]:
        found = {"Content-Type": "application/x-www-form-urlencoded", **dict(self.headers)}
        if self.bearer_token_file:
            try:
                with open(self.bearer_token_file, encoding="utf-8") as token:
                    found["Authorization"] = f"Bearer {token.read().strip()}"
            except OSError as error:
                raise SourceError(f"{self.bearer_token_file}: {error.strerror}") from None
        return found

    def query_range(
        self, expression: str, start: float, end: float, step: float
    ) -> list[dict[str, object]]:
        """The ``matrix`` result of ``/api/v1/query_range``; ``SourceError`` on any failure."""
        base = self.url.rstrip("/")
        data = urllib.parse.urlencode(
            {"query": expression, "start": f"{start:.0f}", "end": f"{end:.0f}", "step": f"{step:g}"}
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - the operator's own source URL
            base + "/api/v1/query_range", data=data, headers=self._headers()
        )
        context = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=self.timeout, context=context
            ) as response:
                document = json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:300]
            raise SourceError(f"{self.name} ({base}): HTTP {error.code}: {detail}") from None
        except (OSError, ValueError) as error:
            raise SourceError(f"{self.name} ({base}): {error}") from None
        if not isinstance(document, dict) or document.get("status") != "success":
            raise SourceError(f"{self.name} ({base}): query failed: {str(document)[:300]}")
        result = document.get("data", {}).get("result", [])
        return result if isinstance(result, list) else []


def parse_source(text: str) -> tuple[str, str]:
    """``NAME=URL`` -> (name, url); ``SourceError`` naming the flag otherwise."""
    name, equals, url = text.partition("=")
    if not equals or not name.strip() or not url.strip():
        raise SourceError(f"--source {text!r}: expected NAME=URL")
    return name.strip(), url.strip()


def parse_header(text: str) -> tuple[str, str]:
    """``Name: value`` -> (name, value); ``SourceError`` naming the flag otherwise."""
    name, colon, value = text.partition(":")
    if not colon or not name.strip() or any(c in text for c in "\r\n"):
        raise SourceError(f"--prometheus-header {text!r}: expected 'Name: value'")
    return name.strip(), value.strip()


def daily_expression(metric: str, labels: Sequence[str]) -> str:
    """Per series, the count of the day ending at each evaluation time."""
    selected = counted(metric, "1d").replace("$hub", ".*")
    return f"sum by ({', '.join(labels)}) ({selected})"


def daily_counts(
    api: PrometheusAPI, first_day: int, last_day: int
) -> dict[int, dict[SeriesKey, float]]:
    """``{day start: {series: count}}`` for the complete days ``first_day..last_day``."""
    found: dict[int, dict[SeriesKey, float]] = {}
    for metric, labels in ARCHIVED:
        # Evaluated at the end of each day: the count of (end - 1d, end].
        for sample in api.query_range(
            daily_expression(metric, labels), first_day + DAY, last_day + DAY, DAY
        ):
            raw = sample.get("metric")
            values = sample.get("values")
            if not isinstance(raw, dict) or not isinstance(values, list):
                continue
            kept = {label: str(raw.get(label, "")) for label in labels}
            kept[CLUSTER_LABEL] = api.name
            key = series_key(metric, kept)
            for point in values:
                if not isinstance(point, list) or len(point) != 2:
                    continue
                day = int(float(point[0])) - DAY
                value = float(point[1])
                if value > 0 and math.isfinite(value) and first_day <= day <= last_day:
                    found.setdefault(day, {})[key] = value
    return found


@dataclass
class Archived:
    """What one run did for one source."""

    source: str
    first_day: int | None = None  # start of the first day written (None: nothing to do)
    last_day: int | None = None
    days: int = 0
    counts: int = 0  # (series, day) values written
    error: str | None = None
    per_day: dict[int, int] = field(default_factory=dict)


def _chunks(first_day: int, last_day: int) -> Iterator[tuple[int, int]]:
    day = first_day
    while day <= last_day:
        end = min(last_day, day + (CHUNK_DAYS - 1) * DAY)
        yield day, end
        day = end + DAY


def archive_source(
    store: Store,
    api: PrometheusAPI,
    *,
    now: float | None = None,
    backfill_days: int = DEFAULT_BACKFILL_DAYS,
    until: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Archived:
    """Write ``api``'s complete days after its checkpoint into ``store`` (see the module).

    ``until`` stops after that day (its start); ``progress`` is called with each day written.
    Raises ``SourceError`` when the source fails; days written before that stay written.
    """
    today = int(time.time() if now is None else now) // DAY * DAY
    last_complete = today - DAY
    if until is not None:
        last_complete = min(last_complete, until // DAY * DAY)
    checkpoint = store.archive_checkpoint(api.name)
    first = checkpoint + DAY if checkpoint is not None else today - backfill_days * DAY
    done = Archived(api.name)
    for start, end in _chunks(first, last_complete):
        counts = daily_counts(api, start, end)
        for day in range(start, end + DAY, DAY):
            increments = counts.get(day, {})
            store.add_archived_day(api.name, day, increments)
            done.first_day = day if done.first_day is None else done.first_day
            done.last_day = day
            done.days += 1
            done.counts += len(increments)
            if increments:
                done.per_day[day] = len(increments)
            if progress is not None:
                progress(day)
    return done


def archive(
    store: Store,
    apis: Sequence[PrometheusAPI],
    *,
    now: float | None = None,
    backfill_days: int = DEFAULT_BACKFILL_DAYS,
    until: int | None = None,
) -> list[Archived]:
    """``archive_source`` for each source; a failing source is reported, the others run."""

    def one(api: PrometheusAPI) -> Archived:
        try:
            return archive_source(store, api, now=now, backfill_days=backfill_days, until=until)
        except SourceError as error:
            return Archived(api.name, error=str(error))

    return [one(api) for api in apis]


def sources_from(
    specs: Sequence[str],
    headers: Sequence[str] = (),
    bearer_token_file: str | None = None,
    ca_file: str | None = None,
) -> list[PrometheusAPI]:
    """The ``--source`` and authentication flags as sources; names must be distinct."""
    parsed_headers = tuple(parse_header(text) for text in headers)
    apis: list[PrometheusAPI] = []
    seen: set[str] = set()
    for spec in specs:
        name, url = parse_source(spec)
        if name in seen:
            raise SourceError(f"--source {name}: named twice")
        seen.add(name)
        apis.append(PrometheusAPI(name, url, parsed_headers, bearer_token_file, ca_file))
    return apis


def as_rows(results: Sequence[Archived]) -> list[Mapping[str, object]]:
    """One row per source, for the command's table and JSON."""
    return [
        {
            "source": r.source,
            "first_day": None if r.first_day is None else iso(r.first_day)[:10],
            "last_day": None if r.last_day is None else iso(r.last_day)[:10],
            "days": r.days,
            "counts": r.counts,
            "error": r.error,
        }
        for r in results
    ]
