"""The store's read side: which series, hubs and metrics it holds, and their sums over a window.

``Queries`` is every question ``report``, ``unused``, the page and the API ask of the
counts (``collector.store.Store`` adds the schema and the writes on top of it; open a
``Store``, which is both). Reads go through ``SqliteDb._query``: interrupted after
``QUERY_SECONDS``, every ``sqlite3`` error raised as ``StoreError`` naming the file.

Tables (their columns are commented in ``collector.store.MIGRATIONS``): ``series`` (name,
labels JSON, namespace, all-time ``total``), ``bucket`` (hourly and daily sums per series)
and ``day`` (the daily sum of every bucket, kept on each write). A window ``[start, end)``
holds a bucket when the bucket's start is in it: whole days are read from ``day``, the
partial days at either end from ``bucket``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

from popularity_contest.collector.series import (
    AGGREGATES,
    DAY,
    HOUR,
    Count,
    SeriesKey,
    Total,
    labels_of,
    labels_text,
    period_start,
    series_key,
    to_timestamp,
)
from popularity_contest.collector.sqlitedb import SqliteDb
from popularity_contest.names import IMPORTED_PACKAGE


def _series_where(metric: str | None, namespace: str | None) -> tuple[list[str], list[object]]:
    """``(clauses, parameters)`` choosing the series of ``metric`` in ``namespace`` (None:
    any); the clauses are joined with ``AND`` (``"1"`` alone matches every series)."""
    clauses, parameters = ["1"], list[object]()
    if metric is not None:
        clauses.append("name = ?")
        parameters.append(metric)
    if namespace is not None:
        clauses.append("namespace = ?")
        parameters.append(namespace)
    return clauses, parameters


class Queries(SqliteDb):
    """The read-only questions over the counts tables (``Store`` is one of these)."""

    def series_keys_of(self, metric: str, namespace: str | None = None) -> list[SeriesKey]:
        """The series of ``metric`` (in ``namespace`` when given), as keys."""
        sql = "SELECT name, labels FROM series WHERE name = ?"
        parameters: list[object] = [metric]
        if namespace is not None:
            sql += " AND namespace = ?"
            parameters.append(namespace)
        return [series_key(str(n), json.loads(str(lb))) for n, lb in self._query(sql, parameters)]

    def series_count(self, namespace: str | None = None, metric: str | None = None) -> int:
        """How many series of ``metric`` (any when None) in ``namespace`` (any when None)."""
        clauses, parameters = _series_where(metric, namespace)
        rows = self._query(f"SELECT COUNT(*) FROM series WHERE {' AND '.join(clauses)}", parameters)  # noqa: S608 - constant clauses
        count: int = rows[0][0]  # type: ignore[assignment]
        return count

    def series_totals(self) -> list[Total]:
        """All-time total of every series."""
        rows = self._query("SELECT name, labels, total FROM series ORDER BY name, labels")
        return [Total(str(n), json.loads(str(lb)), float(v)) for n, lb, v in rows]  # type: ignore[arg-type]

    def namespaces(self) -> list[str]:
        return [
            str(row[0]) for row in self._query("SELECT DISTINCT namespace FROM series ORDER BY 1")
        ]

    def label_values(self, label: str) -> list[str]:
        """The values ``label`` takes across the series, sorted (``""``: series without it),
        read in SQL (one pass over the series table, no series loaded)."""
        rows = self._query(
            "SELECT DISTINCT coalesce(json_extract(labels, '$.' || json_quote(?)), '')"
            " FROM series ORDER BY 1",
            (label,),
        )
        return [str(row[0]) for row in rows]

    def metrics(self) -> list[str]:
        return [str(row[0]) for row in self._query("SELECT DISTINCT name FROM series ORDER BY 1")]

    def _sums(  # noqa: PLR0917 - private, called in two places
        self,
        start: datetime | float,
        end: datetime | float,
        namespace: str | None,
        metric: str | None,
        period: str | None,
        only: Iterable[Mapping[str, str]] | None = None,
    ) -> list[tuple[object, ...]]:
        """Rows ``(period start or 0, name, labels JSON, sum)`` per period and series.

        A bucket counts when its start is in ``[start, end)``. Whole days in the window are
        read from ``day`` (one row per series and day), the partial days at either end from
        ``bucket``; ``period`` "hour" reads ``bucket`` only, None sums the whole window.
        """
        first, last = int(to_timestamp(start)), int(to_timestamp(end))
        series, parameters = _series_where(metric, namespace)
        if only is not None:
            series.append("labels IN (SELECT value FROM json_each(?))")
            parameters.append(json.dumps([labels_text(tuple(sorted(x.items()))) for x in only]))
        chosen = f"SELECT id FROM series WHERE {' AND '.join(series)}"  # noqa: S608 - constant clauses
        whole_first = -(-first // DAY) * DAY
        whole_last = last - last % DAY
        parts: list[tuple[str, int, int]] = []
        if period == "hour" or whole_first >= whole_last:
            parts.append(("bucket", first, last))
        else:
            if first < whole_first:
                parts.append(("bucket", first, whole_first))
            parts.append(("day", whole_first, whole_last))
            if whole_last < last:
                parts.append(("bucket", whole_last, last))
        width = HOUR if period == "hour" else DAY
        period_sql = "0" if period is None else f"start - start % {width}"
        selects = []
        values: list[object] = []
        for table, low, high in parts:
            selects.append(
                f"SELECT {period_sql} AS p, series_id, value FROM {table}"  # noqa: S608 - constants
                f" WHERE start >= ? AND start < ? AND series_id IN ({chosen})"
            )
            values += [low, high, *parameters]
        return self._query(
            "SELECT t.p, s.name, s.labels, SUM(t.value) FROM ("  # noqa: S608 - constants
            + " UNION ALL ".join(selects)
            + ") t JOIN series s ON s.id = t.series_id GROUP BY t.p, t.series_id",
            values,
        )

    def counts(  # noqa: PLR0917 - its positional order is its documented API
        self,
        start: datetime | float,
        end: datetime | float,
        aggregate: str = "day",
        namespace: str | None = None,
        metric: str | None = IMPORTED_PACKAGE,
        only: Iterable[Mapping[str, str]] | None = None,
    ) -> list[Count]:
        """Sums per period and series, ordered by period then largest first; ``only``: just
        the series with these label sets."""
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}")
        rows = self._sums(
            start, end, namespace, metric, "hour" if aggregate == "hour" else "day", only
        )
        sums: dict[tuple[int, str, str], float] = {}
        periods: dict[int, int] = {}
        for bucket, name, labels, value in rows:
            day = int(bucket)  # type: ignore[call-overload]
            begins = periods.get(day)
            if begins is None:
                begins = periods[day] = period_start(day, aggregate)
            key = (begins, str(name), str(labels))
            sums[key] = sums.get(key, 0.0) + float(value)  # type: ignore[arg-type]
        ordered = sorted(sums.items(), key=lambda item: (item[0][0], -item[1], item[0][1:]))
        return [
            Count(datetime.fromtimestamp(period, timezone.utc), name, labels_of(labels), value)
            for (period, name, labels), value in ordered
        ]

    def totals(
        self,
        start: datetime | float,
        end: datetime | float,
        namespace: str | None = None,
        metric: str | None = IMPORTED_PACKAGE,
    ) -> list[Total]:
        """Sum per series over the window, largest first."""
        rows = self._sums(start, end, namespace, metric, None)
        ordered = sorted(rows, key=lambda r: (-float(r[3]), str(r[1]), str(r[2])))  # type: ignore[arg-type]
        return [Total(str(n), labels_of(str(lb)), float(v)) for _, n, lb, v in ordered]  # type: ignore[arg-type]
