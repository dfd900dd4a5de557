"""One statsd line in, ``(name, tags, samples)`` out: the collector's parser.

Pure and total: whatever the bytes, it returns or raises :class:`LineError` with a
:class:`~popularity_contest.collector.outcomes.Bad` reason (statsd_exporter's words), never
anything else. Mapping the name to a metric is
:mod:`popularity_contest.collector.mapping`'s job.
"""

from __future__ import annotations

from popularity_contest.collector.outcomes import Bad

# The statsd line grammar as prometheus/statsd_exporter reads it (``pkg/line``):
#
#     <name>[,<tag>=<value>...]:<value>|<type>[|@<rate>][|#<tag>:<value>,...][:<value>|<type>...]
#
# ``<type>`` is ``c`` (counter), ``g`` (gauge), ``ms``, ``h``, ``d`` (observers) or ``s`` (set).
# Tags come in the InfluxDB style (``name,k=v:1|c``) or the DogStatsD style
# (``name:1|c|#k:v``), never both. Unlike statsd_exporter, which drops only the faulty sample
# of a multi-sample line, a line with any faulty part is refused as a whole: the collector
# counts lines, and a half-accepted line would make those counts ambiguous.

STAT_TYPES = frozenset({"c", "g", "ms", "h", "d", "s"})
_FLOAT_CHARS = frozenset("0123456789+-.eE")


class LineError(ValueError):
    """A statsd line that cannot be used, and why (``reason``)."""

    def __init__(self, reason: Bad) -> None:
        super().__init__(reason.value)
        self.reason = reason


def _number(text: str, reason: Bad) -> float:
    # float() also accepts "nan", "inf", "1_000" and surrounding spaces: the statsd grammar
    # does not, and none of them can be a count.
    if not text or not _FLOAT_CHARS.issuperset(text):
        raise LineError(reason)
    try:
        number = float(text)
    except ValueError:
        raise LineError(reason) from None
    if number - number != 0.0:  # inf ("1e999"): inf - inf is nan, and nan != 0
        raise LineError(reason)
    return number


def escape_label_name(name: str) -> str:
    """A tag key made into a Prometheus label name, as statsd_exporter escapes names."""
    out = "".join(c if (c.isascii() and (c.isalnum() or c == "_")) else "_" for c in name)
    return "_" + out if out[:1].isdigit() else out


def _tags(text: str, separator: str, labels: dict[str, str], strip_hash: bool) -> None:
    for tag in text.split(","):
        if strip_hash and tag.startswith("#"):
            tag = tag[1:]  # noqa: PLW2901 - DogStatsD allows '#' before each tag
        key, sep, value = tag.partition(separator)
        if not sep or not key or not value:
            raise LineError(Bad.MALFORMED_TAG)
        labels[escape_label_name(key)] = value


def parse_line(line: str) -> tuple[str, dict[str, str], list[tuple[float, str]]]:
    """Parse one statsd line into ``(name, tags, samples)``; raise ``LineError`` if unusable.

    ``samples`` holds ``(value, type)`` pairs; a counter's value is already divided by its
    sample rate. Sample rates must satisfy ``0 < rate <= 1``. Nothing else is checked here
    (a negative counter, say, is the collector's business); nothing but ``LineError`` is
    raised, whatever the input.
    """
    name, colon, rest = line.partition(":")
    if not colon or not name:
        raise LineError(Bad.MALFORMED_LINE)
    labels: dict[str, str] = {}
    dogstatsd = "|#" in rest
    comma = name.find(",")
    if comma >= 0:
        if dogstatsd:
            raise LineError(Bad.MIXED_TAGGING_STYLES)
        _tags(name[comma + 1 :], "=", labels, strip_hash=False)
        name = name[:comma]
        if not name:
            raise LineError(Bad.MALFORMED_LINE)
    parts = rest.split(":") if not dogstatsd else [rest]
    samples: list[tuple[float, str]] = []
    for sample in parts:
        fields = sample.split("|")
        if not 2 <= len(fields) <= 6:
            raise LineError(Bad.MALFORMED_COMPONENT)
        stat_type = fields[1]
        if stat_type not in STAT_TYPES:
            raise LineError(Bad.ILLEGAL_EVENT)
        value = _number(fields[0], Bad.MALFORMED_VALUE)
        for field in fields[2:]:
            if not field:
                raise LineError(Bad.MALFORMED_COMPONENT)
            first = field[0]
            if first == "@":
                rate = _number(field[1:], Bad.INVALID_SAMPLE_FACTOR)
                if not 0.0 < rate <= 1.0:
                    raise LineError(Bad.INVALID_SAMPLE_FACTOR)
                if stat_type == "c":
                    value /= rate
            elif first == "#":
                _tags(field[1:], ":", labels, strip_hash=True)
            elif first == "T" or (first == "c" and field.startswith("c:") and len(field) > 2):
                pass  # DogStatsD timestamp / container id: carries nothing we keep
            else:
                raise LineError(Bad.INVALID_SAMPLE_FACTOR)
        samples.append((value, stat_type))
    return name, labels, samples
