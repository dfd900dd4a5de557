"""The store's values: series keys, labels, periods, and the rows its queries return.

A *series* is a mapped metric name plus its labels, keyed as ``SeriesKey`` (labels sorted);
labels are stored as compact JSON with sorted keys (``labels_text``, read back with
``labels_of``). Times are Unix seconds (UTC); ``period_start`` gives the start of the
hour/day/week (ISO, Monday)/month/quarter/year holding a moment. ``collector.store``
re-exports all of it (``from popularity_contest.collector.store import series_key`` works).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

HOUR = 3600
DAY = 86400
AGGREGATES = ("hour", "day", "week", "month", "quarter", "year")

#: A series as the collector keys it: (name, ((label, value), ...) sorted by label).
SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Count:
    period: datetime  # start of the period, UTC
    name: str
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Total:
    name: str
    labels: dict[str, str]
    value: float


def series_key(name: str, labels: Mapping[str, str]) -> SeriesKey:
    return (name, tuple(sorted(labels.items())))


@functools.lru_cache(maxsize=4096)
def _parsed(labels_json: str) -> tuple[tuple[str, str], ...]:
    return tuple(json.loads(labels_json).items())


def labels_of(labels_json: str) -> dict[str, str]:
    """The labels stored as JSON, as a new dict (parsed once per distinct text)."""
    return dict(_parsed(labels_json))


def labels_text(labels: tuple[tuple[str, str], ...]) -> str:
    return json.dumps(dict(labels), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def to_timestamp(moment: datetime | float) -> float:
    """Unix seconds of a datetime (naive means UTC) or of a number."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    return float(moment)


def period_start(timestamp: int, aggregate: str) -> int:
    """Start (Unix seconds, UTC) of the hour/day/week/month/quarter/year holding ``timestamp``."""
    if aggregate == "hour":
        return timestamp - timestamp % HOUR
    day = timestamp - timestamp % DAY
    if aggregate == "day":
        return day
    if aggregate == "week":  # ISO weeks start on Monday; 1970-01-01 was a Thursday
        return day - ((day // DAY + 3) % 7) * DAY
    moment = datetime.fromtimestamp(day, timezone.utc)
    if aggregate == "month":
        first = moment.replace(day=1)
    elif aggregate == "quarter":
        first = moment.replace(day=1, month=(moment.month - 1) // 3 * 3 + 1)
    elif aggregate == "year":
        first = moment.replace(day=1, month=1)
    else:
        raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}")
    return int(first.timestamp())
