"""Top packages: counts, shares and the privacy threshold, applied in one place.

A package's *count* is the number of processes that imported it in the window (the
reporter sends each package once per process); its *share* is that count divided by the
processes reported in the same window and hub(s). The privacy threshold ``min_processes``
hides every row whose count is below it, so a package only one person uses cannot point at
that person; it applies to each row shown (per hub with ``--by namespace``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from popularity_contest.answers.formats import number

NO_HUB = "(no hub)"


@dataclass(frozen=True)
class Row:
    package: str
    count: float
    share: float | None  # None when no process was reported in the window
    namespace: str | None = None  # set when grouped by namespace

    def as_dict(self) -> dict[str, object]:
        row: dict[str, object] = {}
        if self.namespace is not None:
            row["namespace"] = self.namespace
        row["package"] = self.package
        row["count"] = number(self.count)
        row["share"] = None if self.share is None else round(self.share, 6)
        return row


def visible(count: float, min_processes: int | None) -> bool:
    """Whether a row with this count may be shown under the privacy threshold."""
    return min_processes is None or count >= min_processes


def top_packages(
    packages: Mapping[tuple[str, str], float],
    processes: Mapping[str, float],
    *,
    by_namespace: bool = False,
    min_processes: int | None = None,
    limit: int | None = None,
) -> list[Row]:
    """Rows, largest first (per hub, hubs in name order, when ``by_namespace``)."""
    groups: dict[str | None, dict[str, float]] = {}
    for (hub, package), count in packages.items():
        group = groups.setdefault(hub if by_namespace else None, {})
        group[package] = group.get(package, 0.0) + count
    rows: list[Row] = []
    for namespace in sorted(groups, key=lambda n: n or ""):
        denominator: float
        if namespace is None:
            denominator = sum(processes.values())
        else:
            denominator = processes.get(namespace, 0.0)
        ranked = sorted(groups[namespace].items(), key=lambda item: (-item[1], item[0]))
        shown = [(p, c) for p, c in ranked if c > 0 and visible(c, min_processes)]
        if limit is not None:
            shown = shown[: max(0, limit)]
        rows.extend(
            Row(
                package,
                count,
                count / denominator if denominator > 0 else None,
                namespace,
            )
            for package, count in shown
        )
    return rows
