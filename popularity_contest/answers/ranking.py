"""``popularity-contest report`` (top packages) and the entry point of ``unused``.

A package's *count* is the number of processes that imported it in the window (the
reporter sends each package once per process); its *share* is that count divided by the
processes reported in the same window and hub(s). The privacy threshold ``min_processes``
hides every row whose count is below it, so a package only one person uses cannot point at
that person; it applies to each row shown (per hub with ``--by namespace``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from popularity_contest.answers.sources import SourceError, Window, iso, open_source, window

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
        row["count"] = _number(self.count)
        row["share"] = None if self.share is None else round(self.share, 6)
        return row


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 3)


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


def _share_text(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f}%"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    """An aligned text table (columns in ``right`` are right-aligned)."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def to_csv(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    return buffer.getvalue()


def render(
    rows: Sequence[Row],
    fmt: str,
    *,
    by_namespace: bool,
    span: Window,
    processes: Mapping[str, float],
) -> str:
    dicts = [row.as_dict() for row in rows]
    if fmt == "json":
        return json.dumps(dicts, indent=1, ensure_ascii=False)
    columns = (["namespace"] if by_namespace else []) + ["package", "count", "share"]
    if fmt == "csv":
        return to_csv(dicts, columns).rstrip("\n")
    total = _number(sum(processes.values()))
    lines = [
        f"{iso(span.start)} .. {iso(span.end)}: {total} processes reported"
        + (
            "; " + ", ".join(f"{ns or NO_HUB} {_number(n)}" for ns, n in sorted(processes.items()))
            if by_namespace and processes
            else ""
        )
    ]
    if not rows:
        lines.append("no package reported in this window (or none above the threshold)")
        return "\n".join(lines)
    cells = [
        ([(row.namespace or NO_HUB)] if by_namespace else [])
        + [row.package, str(_number(row.count)), _share_text(row.share)]
        for row in rows
    ]
    offset = 1 if by_namespace else 0
    lines.append(table(columns, cells, {offset + 1, offset + 2}))
    return "\n".join(lines)


def fail(command: str, message: str) -> int:
    print(f"{command}: {message}", file=sys.stderr)
    return 1


def run_report(args: argparse.Namespace) -> int:
    """The ``report`` subcommand."""
    try:
        span = window(args.since, args.start, args.end)
    except ValueError as error:
        return fail("report", str(error))
    if args.min_processes is not None and args.min_processes < 1:
        return fail("report", "--min-processes must be at least 1")
    by_namespace = args.by == "namespace"
    try:
        source = open_source(args.db, args.prometheus)
        try:
            packages = source.packages(span, args.namespace)
            processes = source.processes(span, args.namespace)
        finally:
            source.close()
    except SourceError as error:
        return fail("report", str(error))
    rows = top_packages(
        packages,
        processes,
        by_namespace=by_namespace,
        min_processes=args.min_processes,
        limit=args.limit,
    )
    print(render(rows, args.format, by_namespace=by_namespace, span=span, processes=processes))
    return 0


def run_unused(args: argparse.Namespace) -> int:
    """The ``unused`` subcommand (see popularity_contest.answers.unused)."""
    from popularity_contest.answers import unused

    return unused.run(args)
