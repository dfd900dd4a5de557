"""Top packages: counts, direct counts, shares and the privacy threshold, in one place.

A package's *count* (``processes``) is the number of processes that imported it in the
window (the reporter sends each package once per process); its *direct* count is the
number of those processes whose own code imported it (a notebook cell, a script, ``python
-c``; issue 15's rule, ``docs/concepts/answers.md``); its *share* is the count divided by the
processes reported in the same window and hub(s).

The privacy threshold ``min_processes`` (K) applies to each row shown (per hub with ``--by
namespace``):

* a row is shown only if its count reaches K;
* in a shown row, a direct count below K is *masked* (``Row.direct`` is None), 0 included:
  "one process imported it itself" would point at that person as surely as a package only
  one person uses, and telling 0 from 1 apart would too. Ranked by direct, masked rows
  come after every unmasked one, ordered by count then name (never by the hidden value).

Rows grouped by distribution (:mod:`popularity_contest.answers.distributions`) go through
the same ranking; their counts may be lower bounds (``exact``/``direct_exact`` False).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from popularity_contest.answers.formats import number

NO_HUB = "(no hub)"
#: What ``report --rank`` may order by.
RANKS = ("processes", "direct")


@dataclass(frozen=True)
class Row:
    """One row: a package (or a distribution, when ``packages`` is set) in one hub or all.

    ``count``: processes that imported it; ``direct``: processes whose own code did, None
    when masked by the privacy threshold; ``share``: ``count`` over the processes reported,
    None without any. ``exact``/``direct_exact`` are False where the figure is a lower bound
    (a distribution with several import names). ``packages``: a distribution's import names
    (None for a package row); ``provided``: False for an import name that no distribution
    of the environment provides (or several do), kept as it is in a distribution report.
    """

    package: str
    count: float
    share: float | None  # None when no process was reported in the window
    namespace: str | None = None  # set when grouped by namespace
    direct: float | None = 0.0  # None when masked by the privacy threshold
    exact: bool = True
    direct_exact: bool = True
    packages: tuple[str, ...] | None = None  # set for distribution rows
    provided: bool = True

    def as_dict(self) -> dict[str, object]:
        row: dict[str, object] = {}
        if self.namespace is not None:
            row["hub"] = self.namespace  # the `namespace` label: a hub
        if self.packages is None:
            row["package"] = self.package
        else:
            row["distribution"] = self.package
            row["provided"] = self.provided
            row["packages"] = list(self.packages)
        row["count"] = number(self.count)
        row["direct"] = None if self.direct is None else number(self.direct)
        if self.packages is not None:
            row["count_exact"] = self.exact
            row["direct_exact"] = None if self.direct is None else self.direct_exact
        row["share"] = None if self.share is None else round(self.share, 6)
        return row


@dataclass(frozen=True)
class Entry:
    """What is ranked for one ``(namespace, name)``: counts and how exact they are."""

    count: float
    direct: float = 0.0
    exact: bool = True
    direct_exact: bool = True
    packages: tuple[str, ...] | None = None
    provided: bool = True

    def plus(self, other: Entry) -> Entry:
        """Two hubs' entries for the same name, summed (each process is in one hub)."""
        return Entry(
            self.count + other.count,
            self.direct + other.direct,
            self.exact and other.exact,
            self.direct_exact and other.direct_exact,
            self.packages,
            self.provided and other.provided,
        )


def visible(count: float, min_processes: int | None) -> bool:
    """Whether a row with this count may be shown under the privacy threshold."""
    return min_processes is None or count >= min_processes


def masked(direct: float, min_processes: int | None) -> bool:
    """Whether a shown row's direct count is masked (below a threshold above 1)."""
    return min_processes is not None and min_processes > 1 and direct < min_processes


def rank(
    entries: Mapping[tuple[str, str], Entry],
    processes: Mapping[str, float],
    *,
    by_namespace: bool = False,
    min_processes: int | None = None,
    limit: int | None = None,
    by: str = "processes",
) -> list[Row]:
    """Rows, largest ``by`` first (per hub, hubs in name order, when ``by_namespace``).

    ``entries``: ``{(namespace, name): Entry}``; ``by``: ``processes`` or ``direct`` (ties
    broken by the other count, then by name). Rows whose count is 0 are dropped.
    """
    if by not in RANKS:
        raise ValueError(f"cannot rank by {by!r}: one of {', '.join(RANKS)}")
    groups = _grouped(entries, by_namespace=by_namespace)
    order = _order(by, min_processes)
    rows: list[Row] = []
    for namespace in sorted(groups, key=lambda n: n or ""):
        denominator: float
        if namespace is None:
            denominator = sum(processes.values())
        else:
            denominator = processes.get(namespace, 0.0)
        shown = [
            (name, entry)
            for name, entry in groups[namespace].items()
            if entry.count > 0 and visible(entry.count, min_processes)
        ]
        shown.sort(key=order)
        if limit is not None:
            shown = shown[: max(0, limit)]
        rows.extend(
            _row(name, entry, namespace, denominator, min_processes) for name, entry in shown
        )
    return rows


def _grouped(
    entries: Mapping[tuple[str, str], Entry], *, by_namespace: bool
) -> dict[str | None, dict[str, Entry]]:
    """``{hub: {name: Entry}}``, or ``{None: ...}`` with the hubs' entries summed."""
    groups: dict[str | None, dict[str, Entry]] = {}
    for (hub, name), entry in entries.items():
        group = groups.setdefault(hub if by_namespace else None, {})
        before = group.get(name)
        group[name] = entry if before is None else before.plus(entry)
    return groups


def _order(
    by: str, min_processes: int | None
) -> Callable[[tuple[str, Entry]], tuple[float, float, float, str]]:
    """The sort key of ``(name, Entry)`` pairs ranked ``by`` processes or direct."""

    def key(item: tuple[str, Entry]) -> tuple[float, float, float, str]:
        name, entry = item
        if by == "processes":
            return (-entry.count, 0.0, -entry.direct, name)
        if masked(entry.direct, min_processes):
            # After every unmasked row; never ordered by the hidden value.
            return (1.0, -entry.count, 0.0, name)
        return (0.0, -entry.direct, -entry.count, name)

    return key


def _row(
    name: str, entry: Entry, namespace: str | None, denominator: float, min_processes: int | None
) -> Row:
    """One shown row: its share of ``denominator`` processes, its direct count masked or not."""
    return Row(
        name,
        entry.count,
        entry.count / denominator if denominator > 0 else None,
        namespace,
        None if masked(entry.direct, min_processes) else entry.direct,
        entry.exact,
        entry.direct_exact,
        entry.packages,
        entry.provided,
    )


def top_packages(
    packages: Mapping[tuple[str, str], float],
    processes: Mapping[str, float],
    *,
    direct: Mapping[tuple[str, str], float] | None = None,
    by_namespace: bool = False,
    min_processes: int | None = None,
    limit: int | None = None,
    by: str = "processes",
) -> list[Row]:
    """Package rows, largest ``by`` first (per hub, hubs in name order, when ``by_namespace``).

    ``packages`` and ``direct``: ``{(namespace, package): processes}`` as a source's
    ``packages()`` and ``direct()`` give them (``direct`` None: no direct counts, all 0);
    ``processes``: ``{namespace: processes reported}``. See the module for the threshold.
    """
    entries: dict[tuple[str, str], Entry] = {
        key: Entry(count, (direct or {}).get(key, 0.0)) for key, count in packages.items()
    }
    return rank(
        entries,
        processes,
        by_namespace=by_namespace,
        min_processes=min_processes,
        limit=limit,
        by=by,
    )
