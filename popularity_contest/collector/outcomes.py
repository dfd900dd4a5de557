"""What became of one statsd line: increments to store, or why nothing was stored.

``Ingest`` resolves each distinct line once to an :data:`Outcome` and caches it by line;
``/metrics`` (``exposition``) counts the refusals: every :class:`Bad` reason as
``popcon_collector_lines_bad_total{reason="<value>"}``, each :class:`Refused` kind as a
counter of its own. The parser (``statsd_line.LineError``) names its reasons with
:class:`Bad` members too, so no reason travels as a string.

Members are singletons hashed by identity (``__hash__ = object.__hash__``; ``Enum`` would
hash the member's name in Python code), so counting one on the receiving thread costs what
counting a string did.
"""

from __future__ import annotations

import enum

from popularity_contest.collector.series import SeriesKey

__all__ = ["Bad", "Increments", "Outcome", "Refused"]


class Bad(enum.Enum):
    """A line refused as malformed or unusable.

    The value is the ``reason`` label of ``popcon_collector_lines_bad_total`` (statsd_exporter's
    words where it has one for the same fault).
    """

    __hash__ = object.__hash__

    # The parser (statsd_line): the grammar.
    MALFORMED_LINE = "malformed_line"  # also: not UTF-8
    MALFORMED_COMPONENT = "malformed_component"
    MALFORMED_VALUE = "malformed_value"
    MALFORMED_TAG = "malformed_tag"
    MIXED_TAGGING_STYLES = "mixed_tagging_styles"
    ILLEGAL_EVENT = "illegal_event"
    INVALID_SAMPLE_FACTOR = "invalid_sample_factor"
    # The collector (ingest): what Prometheus could not parse, and the bounds on one sender.
    LINE_TOO_LONG = "line_too_long"
    EMPTY_METRIC_NAME = "empty_metric_name"
    NAME_TOO_LONG = "name_too_long"
    INVALID_METRIC_NAME = "invalid_metric_name"
    TOO_MANY_LABELS = "too_many_labels"
    RESERVED_LABEL = "reserved_label"
    INVALID_LABEL_NAME = "invalid_label_name"
    LABEL_TOO_LONG = "label_too_long"
    ILLEGAL_NEGATIVE_COUNTER = "illegal_negative_counter"
    INCREMENT_TOO_LARGE = "increment_too_large"


class Refused(enum.Enum):
    """A usable line that stores nothing; each kind has its own counter in ``/metrics``."""

    __hash__ = object.__hash__

    UNMAPPED = "unmapped"  # no mapping rule matches the name
    DROPPED = "dropped"  # a rule with ``action: drop`` matched
    IGNORED = "ignored"  # not a counter (gauges, timers, sets: accepted and ignored)
    OVERFLOW = "overflow"  # a new series beyond the series cap


#: What a stored line adds: ``(series, amount)`` per sample (amounts already scaled).
Increments = tuple[tuple[SeriesKey, float], ...]
#: A line's outcome: its increments, or why it stores nothing.
Outcome = Increments | Bad | Refused
