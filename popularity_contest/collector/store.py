"""The collector's SQLite store: counter increments in hourly buckets, rolled up to daily.

This module owns the schema (``MIGRATIONS``) and every write: the collector's flushes
(``add``), archived days (``add_archived_day``), the roll-up and ``prune``. The questions
asked of the counts (``counts``, ``totals``, ``namespaces``...) live in
:mod:`popularity_contest.collector.queries`, which ``Store`` extends; SQLite's mechanics
(open, pragmas, migrations, transactions) in :mod:`popularity_contest.collector.sqlitedb`.

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
from collections.abc import Mapping

from popularity_contest.collector.queries import Queries
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
from popularity_contest.collector.sqlitedb import StoreError
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


class Store(Queries):
    """The counts store: its schema, its writes and (from ``Queries``) its reads.

    Thread-safe: one connection behind a lock (``SqliteDb``).
    """

    migrations = MIGRATIONS

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        super().__init__(connection, path)
        self._ids: dict[SeriesKey, int] = {}

    def _forget(self) -> None:
        self._ids.clear()  # series ids cached from a connection or transaction now gone

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
