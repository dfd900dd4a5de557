"""The collector's SQLite store: counter increments in hourly buckets, rolled up to daily.

One file holds everything (``PRAGMA user_version`` is the schema version; ``MIGRATIONS``
upgrades older files in place). Write-ahead logging lets the report command and the page read
while ``serve`` writes; each flush is one transaction, so a crash loses at most what was not
yet flushed and never half a flush.

Data model
    A *series* is a mapped metric name plus its labels (sorted), e.g.
    ``python_popcon_imported_package_total{namespace="", package="numpy"}``; each keeps its
    all-time ``total`` (what ``/metrics`` exposes). A *bucket* is the sum of the increments a
    series received in one UTC hour (``width`` 3600). Hourly buckets older than the retention
    (days) are summed into daily buckets (``width`` 86400) by ``roll_up``.

Python API (for ``serve``, ``report`` and the page)::

    store = Store.open(path)                  # create=False to refuse a missing file
    store.namespaces()                        # ["", "hub-a", ...]
    store.metrics()                           # mapped names present
    store.counts(start, end, "week", namespace="hub-a", metric=IMPORTED_PACKAGE)
        # -> [Count(period=datetime, name, labels={"namespace":..., "package":...}, value)]
    store.totals(start, end, namespace=None, metric=IMPORTED_PACKAGE)
        # -> [Total(name, labels, value)], largest first
    store.series_totals()                     # all-time totals of every series
    store.prune(below=5, match="python_popcon*")  # drop junk series (see ``prune``)
    store.file_problem()                      # "deleted" / "replaced" / None
    store.close()

``start``/``end`` are aware or naive (= UTC) datetimes or Unix seconds; the window is
``[start, end)`` and holds a bucket when the bucket's start is in it, so beyond the hourly
retention a window includes whole days. Every ``sqlite3`` error is raised as ``StoreError``
with the file name in its message.
"""

from __future__ import annotations

import fnmatch
import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

from popularity_contest.collector.series import (  # re-exported: part of the Store API
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
from popularity_contest.collector.sqlitedb import SqliteDb, StoreError
from popularity_contest.names import (  # re-exported: part of the Store API
    IMPORTED_PACKAGE,
    LIBRARY_USED,
    PROCESSES_REPORTED,
    USER_IMPORTED_PACKAGE,
)

__all__ = [
    "AGGREGATES",
    "DAY",
    "HOUR",
    "IMPORTED_PACKAGE",
    "LIBRARY_USED",
    "PROCESSES_REPORTED",
    "USER_IMPORTED_PACKAGE",
    "Count",
    "SeriesKey",
    "Store",
    "StoreError",
    "Total",
    "labels_of",
    "period_start",
    "series_key",
    "to_timestamp",
]


MIGRATIONS: list[str] = [
    # 1: series with all-time totals; hourly/daily buckets.
    """
    CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        labels TEXT NOT NULL,          -- JSON object, keys sorted
        namespace TEXT NOT NULL,       -- labels["namespace"], "" when absent
        total REAL NOT NULL DEFAULT 0,
        UNIQUE (name, labels)
    );
    CREATE TABLE bucket (
        start INTEGER NOT NULL,        -- Unix seconds (UTC), a multiple of width
        width INTEGER NOT NULL,        -- 3600 (hourly) or 86400 (daily)
        series_id INTEGER NOT NULL REFERENCES series (id),
        value REAL NOT NULL,
        PRIMARY KEY (start, width, series_id)
    ) WITHOUT ROWID;
    CREATE INDEX series_name ON series (name, namespace);
    """,
    # 2: `popularity-contest archive`: per source, the last complete UTC day written.
    """
    CREATE TABLE archive_checkpoint (
        source TEXT PRIMARY KEY,       -- the source's name (its `cluster` label)
        last_day INTEGER NOT NULL      -- Unix seconds of that day's 00:00 UTC
    );
    """,
    # 3: daily sums of every bucket, kept on each write, so that a window of whole days reads
    # one row per series and day whatever the hourly retention (queries over months of
    # hourly buckets were too slow to serve).
    """
    CREATE TABLE day (
        start INTEGER NOT NULL,        -- Unix seconds (UTC) of the day
        series_id INTEGER NOT NULL REFERENCES series (id),
        value REAL NOT NULL,
        PRIMARY KEY (start, series_id)
    ) WITHOUT ROWID;
    INSERT INTO day (start, series_id, value)
        SELECT start - start % 86400, series_id, SUM(value) FROM bucket GROUP BY 1, 2;
    """,
]


class Store(SqliteDb):
    """The counts store over ``SqliteDb`` (thread-safe: one connection behind a lock)."""

    migrations = MIGRATIONS

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        super().__init__(connection, path)
        self._ids: dict[SeriesKey, int] = {}

    def _forget(self) -> None:
        self._ids.clear()  # series ids cached from a connection or transaction now gone

    # --- writing -----------------------------------------------------------------------
    def series_keys(self) -> list[SeriesKey]:
        """Every series stored, as keys (the collector loads them to enforce its cap)."""
        with self._lock:
            try:
                rows = self._db.execute("SELECT id, name, labels FROM series").fetchall()
            except sqlite3.Error as error:
                raise self._fail(error) from None
        keys = []
        for series_id, name, labels in rows:
            key = series_key(name, json.loads(labels))
            self._ids[key] = series_id
            keys.append(key)
        return keys

    def series_keys_of(self, metric: str, namespace: str | None = None) -> list[SeriesKey]:
        """The series of ``metric`` (in ``namespace`` when given), as keys."""
        sql = "SELECT name, labels FROM series WHERE name = ?"
        parameters: list[object] = [metric]
        if namespace is not None:
            sql += " AND namespace = ?"
            parameters.append(namespace)
        return [series_key(str(n), json.loads(str(lb))) for n, lb in self._query(sql, parameters)]

    def add(self, increments: Mapping[SeriesKey, float], at: float | None = None) -> None:
        """Add increments to the hour holding ``at`` (default now), in one transaction."""
        if not increments:
            return
        moment = int(time.time() if at is None else at)
        hour = moment - moment % HOUR
        problem = self.file_problem()
        if problem is not None:
            raise StoreError(problem)
        with self._transaction() as db:
            self._write(db, increments, hour, HOUR)

    def _write(
        self,
        db: sqlite3.Connection,
        increments: Mapping[SeriesKey, float],
        start: int,
        width: int,
    ) -> None:
        """Inside a write transaction: add ``increments`` to the series' totals, to the
        bucket ``[start, start + width)`` and to the daily sums."""
        rows = []
        for key, value in increments.items():
            series_id = self._ids.get(key)
            if series_id is None:
                series_id = self._create_series(key)
            rows.append((value, series_id))
        db.executemany("UPDATE series SET total = total + ? WHERE id = ?", rows)
        db.executemany(
            "INSERT INTO bucket (start, width, series_id, value) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (start, width, series_id)"
            " DO UPDATE SET value = value + excluded.value",
            [(start, width, series_id, value) for value, series_id in rows],
        )
        db.executemany(
            "INSERT INTO day (start, series_id, value) VALUES (?, ?, ?)"
            " ON CONFLICT (start, series_id) DO UPDATE SET value = value + excluded.value",
            [(start - start % DAY, series_id, value) for value, series_id in rows],
        )

    def archive_checkpoint(self, source: str) -> int | None:
        """The start (Unix seconds, 00:00 UTC) of the last day archived from ``source``."""
        rows = self._query("SELECT last_day FROM archive_checkpoint WHERE source = ?", (source,))
        return int(rows[0][0]) if rows else None  # type: ignore[call-overload]

    def add_archived_day(
        self, source: str, day: int, increments: Mapping[SeriesKey, float]
    ) -> None:
        """One day of ``source``'s counts as daily buckets, and the checkpoint, atomically.

        ``day`` is the day's start (a multiple of 86400). A day at or before the checkpoint
        is refused (``StoreError``): writing it again would count it twice.
        """
        if day % DAY:
            raise ValueError(f"not the start of a UTC day: {day}")
        with self._transaction() as db:
            row = db.execute(
                "SELECT last_day FROM archive_checkpoint WHERE source = ?", (source,)
            ).fetchone()
            if row is not None and day <= int(row[0]):
                raise StoreError(f"{self.path}: {source} is already archived up to {row[0]}")
            self._write(db, increments, day, DAY)
            db.execute(
                "INSERT INTO archive_checkpoint (source, last_day) VALUES (?, ?)"
                " ON CONFLICT (source) DO UPDATE SET last_day = excluded.last_day",
                (source, day),
            )

    def _create_series(self, key: SeriesKey) -> int:
        name, labels = key
        labels_json = labels_text(labels)
        namespace = dict(labels).get("namespace", "")
        self._db.execute(
            "INSERT INTO series (name, labels, namespace) VALUES (?, ?, ?)"
            " ON CONFLICT (name, labels) DO NOTHING",
            (name, labels_json, namespace),
        )
        row = self._db.execute(
            "SELECT id FROM series WHERE name = ? AND labels = ?", (name, labels_json)
        ).fetchone()
        series_id = int(row[0])
        self._ids[key] = series_id
        return series_id

    def roll_up(self, retention_days: float, now: float | None = None) -> int:
        """Sum hourly buckets older than ``retention_days`` into daily ones; count removed."""
        moment = int(time.time() if now is None else now) - int(retention_days * DAY)
        cutoff = moment - moment % DAY
        with self._transaction() as db:
            db.execute(
                "INSERT INTO bucket (start, width, series_id, value)"
                " SELECT start - start % ?, ?, series_id, SUM(value) FROM bucket"
                " WHERE width = ? AND start < ? GROUP BY start - start % ?, series_id"
                " ON CONFLICT (start, width, series_id)"
                " DO UPDATE SET value = value + excluded.value",
                (DAY, DAY, HOUR, cutoff, DAY),
            )
            removed = db.execute(
                "DELETE FROM bucket WHERE width = ? AND start < ?", (HOUR, cutoff)
            ).rowcount
        return int(removed)

    def prune(
        self,
        *,
        below: float | None = None,
        match: str | None = None,
        dry_run: bool = False,
    ) -> list[Total]:
        """Delete series (and their buckets) whose all-time total is below ``below`` and/or
        whose name or any label value matches the glob ``match``; return what was (or, with
        ``dry_run``, would be) deleted. A running collector notices and forgets them too."""
        if below is None and match is None:
            raise ValueError("prune needs below or match")
        doomed: list[tuple[int, Total]] = []
        for series_id, name, labels_json, total in self._query(
            "SELECT id, name, labels, total FROM series ORDER BY name, labels"
        ):
            labels = json.loads(str(labels_json))
            if below is not None and not float(total) < below:  # type: ignore[arg-type]
                continue
            if match is not None and not any(
                fnmatch.fnmatchcase(text, match) for text in (str(name), *labels.values())
            ):
                continue
            doomed.append((int(series_id), Total(str(name), labels, float(total))))  # type: ignore[call-overload, arg-type]
        if doomed and not dry_run:
            with self._transaction() as db:
                ids = [(series_id,) for series_id, _ in doomed]
                db.execute("CREATE TEMP TABLE IF NOT EXISTS doomed (id INTEGER PRIMARY KEY)")
                db.execute("DELETE FROM temp.doomed")
                db.executemany("INSERT INTO temp.doomed (id) VALUES (?)", ids)
                # One pass over the buckets (their key does not start with the series id).
                db.execute("DELETE FROM bucket WHERE series_id IN (SELECT id FROM temp.doomed)")
                db.execute("DELETE FROM day WHERE series_id IN (SELECT id FROM temp.doomed)")
                db.execute("DELETE FROM series WHERE id IN (SELECT id FROM temp.doomed)")
                self._ids.clear()
        return [total for _, total in doomed]

    # --- reading -----------------------------------------------------------------------
    def series_count(self, namespace: str | None = None, metric: str | None = None) -> int:
        """How many series of ``metric`` (any when None) in ``namespace`` (any when None)."""
        clauses, parameters = ["1"], []
        if metric is not None:
            clauses.append("name = ?")
            parameters.append(metric)
        if namespace is not None:
            clauses.append("namespace = ?")
            parameters.append(namespace)
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
        series = ["1"]
        parameters: list[object] = []
        if metric is not None:
            series.append("name = ?")
            parameters.append(metric)
        if namespace is not None:
            series.append("namespace = ?")
            parameters.append(namespace)
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
