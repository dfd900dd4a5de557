"""From datagrams to pending increments: parse, map, cap, count what was refused.

``Ingest.feed`` is the collector's hot path (every datagram goes through it, on the receiving
thread). A line's outcome (``outcomes.Outcome``) depends only on its bytes, so outcomes are
cached by line: the common case, a report line seen before, is one dictionary lookup and one
addition. The outcomes that do not store anything are counted, per member, in
``Ingest.stats().refused`` (an ``IngestStats``):

``Bad.*``             the line does not parse, or is not usable (negative counter, absurd
                      increment, sample rate outside (0, 1], invalid UTF-8, a name the rule
                      made empty)
``Refused.UNMAPPED``  no mapping rule matches the name
``Refused.DROPPED``   a rule with ``action: drop`` matched
``Refused.IGNORED``   not a counter (gauges, timers, sets: accepted and ignored)
``Refused.OVERFLOW``  a new series beyond the series cap (series already stored keep counting)

``Bad`` reasons that bound what one sender can make the collector hold: ``LINE_TOO_LONG``
(more than ``MAX_LINE_BYTES``), ``NAME_TOO_LONG`` (a metric name over ``MAX_NAME_LENGTH``),
``LABEL_TOO_LONG`` (a label value over ``MAX_LABEL_VALUE_LENGTH``), ``TOO_MANY_LABELS``
(more than ``MAX_LABELS``), ``RESERVED_LABEL`` (a label name starting with ``__``, reserved
by Prometheus), ``INVALID_LABEL_NAME`` and ``INVALID_METRIC_NAME`` (what Prometheus could
not parse). So no line can make ``/metrics`` unparseable, and one series costs at most a few
hundred bytes in memory and on disk.

Memory is bounded in bytes as well as entries: the outcome cache holds at most
``CACHE_SIZE`` lines and ``CACHE_BYTES`` bytes of them; the set of known series at most
``max_series`` keys of bounded size. Nothing here looks at who sent a datagram.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from popularity_contest.collector import statsd_line
from popularity_contest.collector.mapping import Mapper
from popularity_contest.collector.outcomes import Bad, Outcome, Refused
from popularity_contest.collector.series import SeriesKey

#: One line never adds more than this to a counter: a reporter sends 1 per process, so a
#: larger increment (or a tiny sample rate inflating one) is somebody else's data or an attack.
MAX_INCREMENT = 1_000_000.0
#: Lines remembered with their outcome. Cleared when full (cheap, and a flood of invented
#: lines cannot grow it beyond either bound).
CACHE_SIZE = 50_000
CACHE_BYTES = 8 * 1024 * 1024
#: A reporter's line is ``<prefix>.<package>:1|c`` with components of at most 100 characters
#: and a prefix of at most 200: anything longer is not ours.
MAX_LINE_BYTES = 1024
MAX_NAME_LENGTH = 250  # a mapped metric name, in characters
MAX_LABEL_VALUE_LENGTH = 250
MAX_LABEL_NAME_LENGTH = 100
MAX_LABELS = 16
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

log = logging.getLogger("popularity_contest.serve")


@dataclass(frozen=True)
class IngestStats:
    """``Ingest``'s counters at one moment (``Ingest.stats()``), counted since it started."""

    datagrams: int = 0  # datagrams accounted for (``oversize`` ones excluded)
    oversize: int = 0  # datagrams dropped whole for being larger than ``max_datagram``
    lines: int = 0  # non-empty lines in those datagrams
    stored: int = 0  # lines whose increments went into pending
    refused: Mapping[Bad | Refused, int] = field(default_factory=dict)  # the other lines
    series: int = 0  # distinct series known (stored or pending)
    series_full: bool = False  # the series cap is reached: new series are refused
    pending_series: int = 0  # series with increments not yet taken


class Ingest:
    """Turns datagrams into pending increments per series; thread-safe."""

    def __init__(
        self,
        mapper: Mapper,
        *,
        max_series: int,
        known: Iterable[SeriesKey] = (),
        max_datagram: int = 65000,
    ) -> None:
        self.mapper = mapper
        self.max_series = max_series
        self.max_datagram = max_datagram
        self.lock = threading.Lock()
        self._known: set[SeriesKey] = set(known)
        self._pending: dict[SeriesKey, float] = {}
        self._cache: dict[bytes, Outcome] = {}
        self._cache_bytes = 0
        self._full_logged = False
        self.datagrams = 0
        self.oversize = 0
        self.lines = 0
        self.stored = 0  # lines whose increments went into pending
        self.refused: dict[Bad | Refused, int] = {}  # lines that stored nothing, by why

    # --- the hot path ------------------------------------------------------------------
    def feed(self, datagram: bytes) -> None:
        """Account for one datagram."""
        if len(datagram) > self.max_datagram:
            with self.lock:
                self.oversize += 1
            return
        lines = datagram.split(b"\n")
        with self.lock:
            self.datagrams += 1
            pending = self._pending
            cache = self._cache
            # Any: the exact `type(...) is tuple` below is faster than isinstance for an enum
            # member, but mypy does not narrow its else branch (to Bad | Refused).
            refused: dict[Any, int] = self.refused
            stored = 0
            counted = 0
            for line in lines:
                if not line:
                    continue  # an empty line (trailing newline) is no line, as in statsd_exporter
                counted += 1
                outcome = cache.get(line)
                if outcome is None:
                    if len(line) > MAX_LINE_BYTES:
                        outcome = Bad.LINE_TOO_LONG  # never cached: it would cost memory
                    else:
                        outcome = self._resolve(line)
                        size = len(line) + 100  # the key plus the dict entry and outcome
                        if len(cache) >= CACHE_SIZE or self._cache_bytes + size > CACHE_BYTES:
                            cache.clear()
                            self._cache_bytes = 0
                        cache[line] = outcome
                        self._cache_bytes += size
                if type(outcome) is tuple:
                    stored += 1
                    for key, value in outcome:
                        pending[key] = pending.get(key, 0.0) + value
                else:
                    refused[outcome] = refused.get(outcome, 0) + 1
            self.lines += counted
            self.stored += stored

    def _resolve(self, raw: bytes) -> Outcome:
        # Called with the lock held, once per distinct line (until the cache is cleared).
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            return Bad.MALFORMED_LINE
        try:
            name, tags, samples = statsd_line.parse_line(line)
        except statsd_line.LineError as error:
            return error.reason
        if any(stat_type != "c" for _, stat_type in samples):
            return Refused.IGNORED
        mapped = self.mapper.map(name, "c")
        if mapped is None:
            return Refused.UNMAPPED
        if mapped.drop:
            return Refused.DROPPED
        if not mapped.name:
            return Bad.EMPTY_METRIC_NAME
        if len(mapped.name) > MAX_NAME_LENGTH:
            return Bad.NAME_TOO_LONG
        if not _METRIC_NAME.fullmatch(mapped.name):
            return Bad.INVALID_METRIC_NAME
        labels = dict(tags)
        for label, text in mapped.labels.items():
            if not (mapped.rule.honor_labels and label in labels):
                labels[label] = text
        problem = label_problem(labels)
        if problem is not None:
            return problem
        key: SeriesKey = (mapped.name, tuple(sorted(labels.items())))
        scale = mapped.rule.scale
        increments: list[tuple[SeriesKey, float]] = []
        for number, _ in samples:
            amount = number * scale if scale is not None else number
            if amount < 0:
                return Bad.ILLEGAL_NEGATIVE_COUNTER
            if amount > MAX_INCREMENT:
                return Bad.INCREMENT_TOO_LARGE
            increments.append((key, amount))
        if key not in self._known:
            if len(self._known) >= self.max_series:
                if not self._full_logged:
                    self._full_logged = True
                    log.warning(
                        "series cap reached (%d series): new packages and hubs are refused"
                        " until junk series are pruned (popularity-contest prune) or"
                        " --max-series is raised; existing series keep counting",
                        self.max_series,
                    )
                return Refused.OVERFLOW
            self._known.add(key)
        return tuple(increments)

    def reset_known(self, known: Iterable[SeriesKey]) -> None:
        """Replace the known series (after ``prune`` removed some from the store)."""
        with self.lock:
            self._known = set(known) | set(self._pending)
            self._cache.clear()
            self._cache_bytes = 0
            self._full_logged = len(self._known) >= self.max_series

    # --- the other side: flushing and reading --------------------------------------------
    def take(self) -> dict[SeriesKey, float]:
        """The increments pending since the last call (the caller stores them)."""
        with self.lock:
            pending, self._pending = self._pending, {}
        return pending

    def give_back(self, increments: Mapping[SeriesKey, float]) -> None:
        """Return increments a failed flush could not store, to retry them next time."""
        with self.lock:
            pending = self._pending
            for key, value in increments.items():
                pending[key] = pending.get(key, 0.0) + value

    def pending(self) -> dict[SeriesKey, float]:
        """A copy of the increments not yet taken."""
        with self.lock:
            return dict(self._pending)

    def series_count(self) -> int:
        with self.lock:
            return len(self._known)

    def full(self) -> bool:
        """True when the series cap is reached (new series are refused)."""
        with self.lock:
            return len(self._known) >= self.max_series

    def stats(self) -> IngestStats:
        """The counters now (a consistent snapshot, taken under the lock)."""
        with self.lock:
            return IngestStats(
                datagrams=self.datagrams,
                oversize=self.oversize,
                lines=self.lines,
                stored=self.stored,
                refused=dict(self.refused),
                series=len(self._known),
                series_full=len(self._known) >= self.max_series,
                pending_series=len(self._pending),
            )


def label_problem(labels: Mapping[str, str]) -> Bad | None:
    """Why these labels cannot be stored and exposed, or None."""
    if len(labels) > MAX_LABELS:
        return Bad.TOO_MANY_LABELS
    for name, value in labels.items():
        if name.startswith("__"):
            return Bad.RESERVED_LABEL
        if len(name) > MAX_LABEL_NAME_LENGTH or not _LABEL_NAME.fullmatch(name):
            return Bad.INVALID_LABEL_NAME
        if len(value) > MAX_LABEL_VALUE_LENGTH:
            return Bad.LABEL_TOO_LONG
    return None
