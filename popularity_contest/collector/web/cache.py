"""The API's answer cache: one computation per question, shared by everyone asking it.

``AnswerCache`` keeps answers (anything with an HTTP ``status`` and a ``body`` in bytes,
``api.Response`` in the collector) per hashable key, bounded in entries and bytes, fresh for
``CACHE_SECONDS`` or until the store is next written.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

CACHE_SECONDS = 5.0
CACHE_ENTRIES = 256
CACHE_BYTES = 64 * 1024 * 1024


class Answer(Protocol):
    """What the cache needs of an answer: its HTTP status and its body."""

    @property
    def status(self) -> int: ...

    @property
    def body(self) -> bytes: ...


AnswerT = TypeVar("AnswerT", bound=Answer)


class AnswerCache(Generic[AnswerT]):
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
        self._kept: OrderedDict[Hashable, tuple[float, int, AnswerT]] = OrderedDict()
        self._bytes = 0
        self._pending: dict[Hashable, threading.Event] = {}

    def peek(
        self,
        key: Hashable,
        compute: Callable[[], AnswerT] | None = None,
        submit: Callable[[Callable[[], object]], object] | None = None,
    ) -> AnswerT | None:
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

    def _refresh(self, key: Hashable, compute: Callable[[], AnswerT]) -> None:
        with self._lock:
            done = self._pending.pop(key, None)
        if done is not None:
            done.set()
        try:
            self.get(key, compute)
        except Exception:  # a failed refresh: the next asker computes and sees the error
            return

    def get(self, key: Hashable, compute: Callable[[], AnswerT]) -> AnswerT:
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
