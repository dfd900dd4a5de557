"""The statsd line format, as the reporter writes it.

A report is a handful of counter lines, ``<name>:1|c``, packed into datagrams the way the
``statsd`` package's pipeline packs them: lines joined by ``\\n``, a new datagram started
before one would reach the size limit. Names are built only from *safe components*: ASCII
letters, digits, ``_`` and ``-``. A name with anything else in it (``: | @ # , [ ] =``,
whitespace, control bytes, non-ASCII) is refused, never rewritten, so no module or
distribution name can add a line, a field or a tag to what is sent, and two different names
can never be turned into the same one.

This module runs inside users' processes: standard library only, nothing imported.
"""

from __future__ import annotations

# Only for annotations: `collections.abc` is not loaded at start-up and costs ~1 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

MAX_COMPONENT_LENGTH = 100
MAX_PREFIX_LENGTH = 200
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")

#: The leaf names that sit beside the prefix's last component (see ``sibling``).
PROCESSES_REPORTED = "processes_reported"
USER_IMPORTED_PACKAGE = "user_imported_package"
LIBRARY_USED = "library_used"


def is_safe_component(text: object) -> bool:
    """True if ``text`` can be one dot-separated component of a statsd name."""
    return type(text) is str and 0 < len(text) <= MAX_COMPONENT_LENGTH and _SAFE.issuperset(text)


def is_safe_prefix(text: object) -> bool:
    """True if ``text`` is one or more safe components separated by single dots."""
    if type(text) is not str or not 0 < len(text) <= MAX_PREFIX_LENGTH:
        return False
    return all(is_safe_component(part) for part in text.split("."))


def sibling(prefix: str, leaf: str) -> str:
    """Replace the prefix's last component with ``leaf``.

    ``python_popcon.imported_package`` -> ``python_popcon.processes_reported``;
    ``python_popcon.hub.ns.imported_package`` -> ``python_popcon.hub.ns.processes_reported``.
    A one-component prefix gets ``leaf`` appended instead. Either way the result can never
    be mistaken for ``<prefix>.<package>`` by a glob that matches one component.
    """
    parent, dot, _last = prefix.rpartition(".")
    return f"{parent}.{leaf}" if dot else f"{prefix}.{leaf}"


def package_name(prefix: str, package: str, *, user_site: bool = False) -> str:
    """The counter name for a package: ``<prefix>.<package>``, or, for one from the user
    site directory, ``user_imported_package`` beside the prefix (see ``sibling``)."""
    stem = sibling(prefix, USER_IMPORTED_PACKAGE) if user_site else prefix
    return f"{stem}.{package}"


def counter_line(name: str, value: int = 1) -> str:
    """One statsd counter increment, exactly as ``statsd.StatsClient.incr`` writes it."""
    return f"{name}:{value}|c"


def pack(lines: Iterable[str], max_size: int) -> list[bytes]:
    """Join lines into datagrams, each kept below ``max_size`` bytes where a line allows.

    Same packing as ``statsd``'s pipeline (``len(line) + len(datagram) + 1 >= max_size``
    starts a new datagram; a single longer line travels alone). Lines are ASCII by
    construction (``is_safe_component``), so characters and bytes agree.
    """
    datagrams: list[bytes] = []
    current = ""
    for line in lines:
        if not current:
            current = line
        elif len(line) + len(current) + 1 >= max_size:
            datagrams.append(current.encode("ascii"))
            current = line
        else:
            current += "\n" + line
    if current:
        datagrams.append(current.encode("ascii"))
    return datagrams


# --- Parsing (the collector's side) -------------------------------------------------------
#
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
    """A statsd line that cannot be used; ``reason`` is a short word, as in statsd_exporter."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _number(text: str, reason: str) -> float:
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
            raise LineError("malformed_tag")
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
        raise LineError("malformed_line")
    labels: dict[str, str] = {}
    dogstatsd = "|#" in rest
    comma = name.find(",")
    if comma >= 0:
        if dogstatsd:
            raise LineError("mixed_tagging_styles")
        _tags(name[comma + 1 :], "=", labels, strip_hash=False)
        name = name[:comma]
        if not name:
            raise LineError("malformed_line")
    parts = rest.split(":") if not dogstatsd else [rest]
    samples: list[tuple[float, str]] = []
    for sample in parts:
        fields = sample.split("|")
        if not 2 <= len(fields) <= 6:
            raise LineError("malformed_component")
        stat_type = fields[1]
        if stat_type not in STAT_TYPES:
            raise LineError("illegal_event")
        value = _number(fields[0], "malformed_value")
        for field in fields[2:]:
            if not field:
                raise LineError("malformed_component")
            first = field[0]
            if first == "@":
                rate = _number(field[1:], "invalid_sample_factor")
                if not 0.0 < rate <= 1.0:
                    raise LineError("invalid_sample_factor")
                if stat_type == "c":
                    value /= rate
            elif first == "#":
                _tags(field[1:], ":", labels, strip_hash=True)
            elif first == "T" or (first == "c" and field.startswith("c:") and len(field) > 2):
                pass  # DogStatsD timestamp / container id: carries nothing we keep
            else:
                raise LineError("invalid_sample_factor")
        samples.append((value, stat_type))
    return name, labels, samples
