"""SQLite mechanics under the collector's store: open, pragmas, migrations, transactions.

``SqliteDb`` owns one ``sqlite3`` connection behind a lock (thread-safe) and knows nothing of
what is stored: ``open`` creates the file owner-only (directory 0700, file 0600) and sets
the pragmas (WAL, ``synchronous = NORMAL``, a 5 s busy timeout); ``migrations`` (a subclass's
list of SQL scripts, ``PRAGMA user_version`` counting those applied) upgrade older files in
place and refuse newer ones; ``_transaction`` is one write transaction; ``_query`` is one
read interrupted after ``QUERY_SECONDS``; ``file_problem`` tells a file deleted or replaced
underneath. Every ``sqlite3`` or OS error comes out as ``StoreError`` whose message starts
with the file's name. ``collector.store.Store`` adds the data model.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar, TypeVar

from popularity_contest.errors import PopconError

#: A read that takes longer is interrupted (``StoreError``): narrow the question.
QUERY_SECONDS = 10.0


#: Modes of what ``Store.open`` creates: only the collector's user reads raw counts.
PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600


class StoreError(PopconError):
    """A storage problem; the message starts with the database file's name."""


DbT = TypeVar("DbT", bound="SqliteDb")


class SqliteDb:
    """One SQLite file: a connection behind a lock, its schema kept at ``migrations``."""

    #: SQL scripts (statements separated by ``;``); number N brings the schema to version N+1.
    migrations: ClassVar[list[str]] = []

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        self._db = connection
        self.path = path
        self._lock = threading.Lock()
        #: (device, inode) of the file opened: a store deleted or replaced underneath a running
        #: collector is detected (SQLite would go on writing to the unlinked file).
        self._identity: tuple[int, int] | None = None
        self._data_version = 0
        #: Write transactions committed through this object (answer caches key on it).
        self.writes = 0

    def _forget(self) -> None:
        """Drop what was cached from a connection or a transaction that is gone (a hook)."""

    @classmethod
    def open(cls: type[DbT], path: str | Path, *, create: bool = True) -> DbT:
        """Open (and create or migrate) the store at ``path``.

        Private by default: a directory it creates is 0700 (only its last component; an
        existing one is left alone) and a file it creates is 0600, and SQLite gives the
        ``-wal``/``-shm`` files the database file's mode, so other users of a shared machine
        cannot read raw counts below the privacy threshold. ``chmod`` widens it on purpose.
        """
        name = str(path)
        if not create and not Path(name).exists():
            raise StoreError(f"{name}: no such store (has `popularity-contest serve` run?)")
        try:
            if create:
                Path(name).parent.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
                # An empty file is an empty SQLite database; created here with our mode
                # (O_EXCL: a file that exists keeps its mode and content).
                try:
                    os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE))
                except FileExistsError:
                    pass
            connection = sqlite3.connect(name, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"{name}: {error}") from None
        store = cls(connection, name)
        try:
            store._setup()
            info = os.stat(name)
            store._identity = (info.st_dev, info.st_ino)
            store._data_version = store._read_data_version()
        except sqlite3.Error as error:
            connection.close()
            raise StoreError(f"{name}: {error}") from None
        except StoreError:
            connection.close()
            raise
        except OSError as error:
            connection.close()
            raise StoreError(f"{name}: {error}") from None
        return store

    def file_problem(self) -> str | None:
        """Why the file opened is no longer the file at ``path`` (deleted, replaced), or None."""
        if self._identity is None:
            return None
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return f"{self.path}: the store file was deleted while in use (restart to start anew)"
        except OSError as error:
            return f"{self.path}: {error}"
        if (info.st_dev, info.st_ino) != self._identity:
            return f"{self.path}: the store file was replaced while in use (restart to use it)"
        return None

    def reconnect(self) -> None:
        """Open the same file anew (a connection SQLite opened read-only stays so even once
        the file is writable again); refuses when the file is gone or was replaced."""
        problem = self.file_problem()
        if problem is not None:
            raise StoreError(problem)
        fresh = type(self).open(self.path, create=False)
        if fresh._identity != self._identity:
            fresh.close()
            raise StoreError(f"{self.path}: the store file was replaced while in use")
        with self._lock:
            old, self._db = self._db, fresh._db
            self._forget()
            self._data_version = fresh._data_version
        try:
            old.close()
        except sqlite3.Error:
            pass

    def probe_write(self) -> None:
        """One tiny write transaction: raises ``StoreError`` while the store is not writable."""
        problem = self.file_problem()
        if problem is not None:
            raise StoreError(problem)
        with self._transaction() as db:
            db.execute(f"PRAGMA user_version = {len(self.migrations)}")

    def _read_data_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def changed_elsewhere(self) -> bool:
        """True once another connection (``prune``) committed since the last call."""
        with self._lock:
            try:
                version = self._read_data_version()
            except sqlite3.Error as error:
                raise self._fail(error) from None
            changed = version != self._data_version
            self._data_version = version
            if changed:
                self.writes += 1
                self._forget()  # ids of series removed elsewhere must not be reused
        return changed

    def _setup(self) -> None:
        db = self._db
        db.execute("PRAGMA busy_timeout = 5000")
        db.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL survives a killed process; only power loss can drop the last
        # commits, which is the trade every time-series store makes.
        db.execute("PRAGMA synchronous = NORMAL")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(self.migrations):
            raise StoreError(
                f"{self.path}: schema version {version} is newer than this popularity-contest"
                f" understands ({len(self.migrations)}); upgrade popularity-contest"
            )
        for number in range(version, len(self.migrations)):
            db.execute("BEGIN IMMEDIATE")
            for statement in self.migrations[number].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {number + 1}")
            db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error as error:
                raise StoreError(f"{self.path}: {error}") from None

    def __enter__(self: DbT) -> DbT:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fail(self, error: sqlite3.Error) -> StoreError:
        return StoreError(f"{self.path}: {error}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction under the lock: committed, or rolled back on any error.

        A ``sqlite3`` error comes out as ``StoreError`` naming the file.
        """
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    db.execute("COMMIT")
                    self.writes += 1
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as error:
                # Series ids created in a rolled-back transaction no longer exist.
                self._forget()
                raise self._fail(error) from None

    def _query(self, sql: str, parameters: Iterable[object] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            deadline = time.monotonic() + QUERY_SECONDS
            try:
                self._db.set_progress_handler(lambda: time.monotonic() > deadline, 100_000)
                return self._db.execute(sql, tuple(parameters)).fetchall()
            except sqlite3.OperationalError as error:
                if "interrupted" in str(error):
                    raise StoreError(
                        f"{self.path}: the query took more than {QUERY_SECONDS:g} s: narrow it"
                    ) from None
                raise self._fail(error) from None
            except sqlite3.Error as error:
                raise self._fail(error) from None
            finally:
                try:
                    self._db.set_progress_handler(None, 0)
                except sqlite3.Error:
                    pass
