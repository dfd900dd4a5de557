"""``popularity-contest report``: top packages over a window, from the store or Prometheus."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence

from popularity_contest.answers.formats import number, share_text, table, terminal_text, to_csv
from popularity_contest.answers.ranking import NO_HUB, Row, top_packages
from popularity_contest.answers.sources import open_source
from popularity_contest.answers.window import Window, iso, window
from popularity_contest.errors import UsageError


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
    total = number(sum(processes.values()))
    lines = [
        terminal_text(  # hub names came off the wire
            f"{iso(span.start)} .. {iso(span.end)}: {total} processes reported"
            + (
                "; "
                + ", ".join(f"{ns or NO_HUB} {number(n)}" for ns, n in sorted(processes.items()))
                if by_namespace and processes
                else ""
            )
        )
    ]
    if not rows:
        lines.append("no package reported in this window (or none above the threshold)")
        return "\n".join(lines)
    cells = [
        ([(row.namespace or NO_HUB)] if by_namespace else [])
        + [row.package, str(number(row.count)), share_text(row.share)]
        for row in rows
    ]
    offset = 1 if by_namespace else 0
    lines.append(table(columns, cells, {offset + 1, offset + 2}))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """The ``report`` subcommand."""
    try:
        span = window(args.since, args.start, args.end)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.min_processes is not None and args.min_processes < 1:
        raise UsageError("--min-processes must be at least 1")
    by_namespace = args.by == "namespace"
    source = open_source(args.db, args.prometheus)
    try:
        packages = source.packages(span, args.namespace)
        processes = source.processes(span, args.namespace)
    finally:
        source.close()
    rows = top_packages(
        packages,
        processes,
        by_namespace=by_namespace,
        min_processes=args.min_processes,
        limit=args.limit,
    )
    print(render(rows, args.format, by_namespace=by_namespace, span=span, processes=processes))
    return 0
