"""From datagrams to pending increments: parse, map, cap, count what was refused.

``Ingest.feed`` is the collector's hot path (every datagram goes through it, on the receiving
thread). A line's outcome depends only on its bytes, so outcomes are cached by line: the
common case, a report line seen before, is one dictionary lookup and one addition. The
outcomes that do not store anything are counted, per reason, in ``Ingest.stats()``:

``bad``        the line does not parse, or is not usable (negative counter, absurd increment,
               sample rate outside (0, 1], invalid UTF-8, a name the rule made empty)
``unmapped``   no mapping rule matches the name
``dropped``    a rule with ``action: drop`` matched
``ignored``    not a counter (gauges, timers, sets: accepted and ignored)
``overflow``   a new series beyond the series cap

Nothing here looks at who sent a datagram.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from popularity_contest.collector import statsd_line
from popularity_contest.collector.mapping import Mapper
from popularity_contest.collector.store import SeriesKey

#: One line never adds more than this to a counter: a reporter sends 1 per process, so a
#: larger increment (or a tiny sample rate inflating one) is somebody else's data or an attack.
MAX_INCREMENT = 1_000_000.0
#: Lines remembered with their outcome. Cleared when full (cheap, and a flood of invented
#: lines cannot grow it).
CACHE_SIZE = 50_000

Outcome = tuple[tuple[SeriesKey, float], ...] | str


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
        self.datagrams = 0
        self.oversize = 0
        self.lines = 0
        self.stored = 0  # lines whose increments went into pending
        self.refused: dict[str, int] = {}  # "bad:<reason>", "unmapped", "dropped", ...

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
            refused = self.refused
            stored = 0
            counted = 0
            for line in lines:
                if not line:
                    continue  # an empty line (trailing newline) is no line, as in statsd_exporter
                counted += 1
                outcome = cache.get(line)
                if outcome is None:
                    outcome = self._resolve(line)
                    if len(cache) >= CACHE_SIZE:
                        cache.clear()
                    cache[line] = outcome
                if isinstance(outcome, str):
                    refused[outcome] = refused.get(outcome, 0) + 1
                else:
                    stored += 1
                    for key, value in outcome:
                        pending[key] = pending.get(key, 0.0) + value
            self.lines += counted
            self.stored += stored

    def _resolve(self, raw: bytes) -> Outcome:
        # Called with the lock held, once per distinct line (until the cache is cleared).
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            return "bad:malformed_line"
        try:
            name, tags, samples = statsd_line.parse_line(line)
        except statsd_line.LineError as error:
            return f"bad:{error.reason}"
        if any(stat_type != "c" for _, stat_type in samples):
            return "ignored"
        mapped = self.mapper.map(name, "c")
        if mapped is None:
            return "unmapped"
        if mapped.drop:
            return "dropped"
        if not mapped.name:
            return "bad:empty_metric_name"
        labels = dict(tags)
        for label, text in mapped.labels.items():
            if not (mapped.rule.honor_labels and label in labels):
                labels[label] = text
        key: SeriesKey = (mapped.name, tuple(sorted(labels.items())))
        scale = mapped.rule.scale
        increments: list[tuple[SeriesKey, float]] = []
        for number, _ in samples:
            amount = number * scale if scale is not None else number
            if amount < 0:
                return "bad:illegal_negative_counter"
            if amount > MAX_INCREMENT:
                return "bad:increment_too_large"
            increments.append((key, amount))
        if key not in self._known:
            if len(self._known) >= self.max_series:
                return "overflow"
            self._known.add(key)
        return tuple(increments)

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

    def stats(self) -> dict[str, object]:
        """Health counters: datagrams, oversize, lines, stored, and refused by reason."""
        with self.lock:
            return {
                "datagrams": self.datagrams,
                "oversize": self.oversize,
                "lines": self.lines,
                "stored": self.stored,
                "refused": dict(self.refused),
                "series": len(self._known),
            }
