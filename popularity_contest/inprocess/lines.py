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

from popularity_contest import names

# Only for annotations: `collections.abc` is not loaded at start-up and costs ~1 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

MAX_COMPONENT_LENGTH = 100
MAX_PREFIX_LENGTH = 200
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


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
    stem = sibling(prefix, names.LEAF_USER_IMPORTED_PACKAGE) if user_site else prefix
    return f"{stem}.{package}"


def counter_line(name: str, value: int = 1) -> str:
    """One statsd counter increment, exactly as ``statsd.StatsClient.incr`` writes it."""
    return f"{name}:{value}|c"


def pack(lines: "Iterable[str]", max_size: int) -> list[bytes]:
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
