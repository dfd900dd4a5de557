"""Time windows: the ``--since``/``--start``/``--end`` flags and the API's ``start``/``end``.

A window is ``[start, end)`` in Unix seconds (UTC). Ages are ``45s``, ``90m``, ``12h``,
``30d``, ``8w``; times are ISO 8601 (naive means UTC, ``Z`` accepted) or Unix seconds.
Every command, the API and the page default to the last ``DEFAULT_SINCE``.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone

#: The window every command, the API and the page use unless told otherwise.
DEFAULT_SINCE = "30d"

#: An age: one or more number-unit parts, largest unit first, each unit at most once, as
#: Prometheus writes durations (``1y``, ``1h30m``, ``2d12h``; decimals such as ``1.5h`` too).
_AGE = re.compile(
    r"^\s*" + "".join(rf"(?:(?P<{unit}>\d+(?:\.\d+)?)\s*{unit}\s*)?" for unit in "ywdhms") + r"$"
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def parse_time(text: str) -> float:
    """Unix seconds from ISO 8601 (naive = UTC, ``Z`` accepted) or a number of seconds."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds):
            return seconds
        raise ValueError(f"not a finite number of seconds: {text!r}")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 time or Unix seconds: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


@dataclass(frozen=True)
class Window:
    start: float  # Unix seconds, included
    end: float  # Unix seconds, excluded

    @property
    def seconds(self) -> int:
        return max(1, round(self.end - self.start))


def parse_age(text: str) -> float:
    """Seconds in an age such as ``45s``, ``90m``, ``1h30m``, ``12h``, ``30d``, ``8w``, ``1y``.

    Units ``y`` (365 days, as in Prometheus), ``w``, ``d``, ``h``, ``m``, ``s``; parts are
    written largest unit first, each unit at most once. ValueError unless the age is positive.
    """
    match = _AGE.match(text)
    parts = {} if match is None else {k: v for k, v in match.groupdict().items() if v is not None}
    seconds = sum(float(number) * _UNITS[unit] for unit, number in parts.items())
    if not parts or seconds <= 0:
        raise ValueError(f"not an age like 90m, 1h30m, 12h, 30d, 8w or 1y: {text!r}")
    return seconds


def window(
    since: str | None, start: str | None, end: str | None, now: float | None = None
) -> Window:
    """The window the CLI flags describe: ``--start`` wins over ``--since``; end is now."""
    last = parse_time(end) if end else (time.time() if now is None else now)
    first = parse_time(start) if start else last - parse_age(since or DEFAULT_SINCE)
    if first >= last:
        raise ValueError("the window's start must be before its end")
    return Window(first, last)


def iso(timestamp: float | datetime) -> str:
    """``2026-11-29T19:00:00Z`` for Unix seconds or an aware datetime (whole seconds)."""
    moment = (
        timestamp
        if isinstance(timestamp, datetime)
        else datetime.fromtimestamp(timestamp, timezone.utc)
    )
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
