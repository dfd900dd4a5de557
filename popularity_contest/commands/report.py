"""``popularity-contest report``: top packages over a window, from the store or Prometheus.

Every format carries the window and the processes denominator the shares divide by:

* ``table``: a first line ``START .. END: N processes reported`` (per hub with
  ``--by namespace``), then the rows;
* ``json``: ``{"window": {"start", "end"}, "hub", "min_processes", "processes",
  "processes_per_hub", "rows": [{"namespace"?, "package", "count", "share"}]}``;
* ``csv``: one row per package with ``window_start``, ``window_end`` and ``processes``
  (the denominator of that row's share: its hub's with ``--by namespace``) as columns, so
  the file needs no comment lines.

``count`` is the number of processes that imported the package in the window.
"""

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
    shown_before_limit: int | None = None,
    min_processes: int | None = None,
    hub: str | None = None,
) -> str:
    """``rows`` in ``fmt``; ``shown_before_limit``: rows there were before ``--limit``."""
    total = number(sum(processes.values()))
    dicts = [row.as_dict() for row in rows]
    if fmt == "json":
        document: dict[str, object] = {
            "window": {"start": iso(span.start), "end": iso(span.end)},
            "hub": hub,
            "min_processes": min_processes,
            "processes": total,
            "processes_per_hub": {ns: number(n) for ns, n in sorted(processes.items())},
            "rows": dicts,
        }
        return json.dumps(document, indent=1, ensure_ascii=False)
    columns = (["namespace"] if by_namespace else []) + ["package", "count", "share"]
    if fmt == "csv":
        for d, row in zip(dicts, rows, strict=True):
            d["processes"] = (
                number(processes.get(row.namespace or "", 0.0)) if by_namespace else total
            )
            d["window_start"] = iso(span.start)
            d["window_end"] = iso(span.end)
        extra = ["processes", "window_start", "window_end"]
        return to_csv(dicts, [*columns, *extra]).rstrip("\n")
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
    available = len(rows) if shown_before_limit is None else shown_before_limit
    if not rows:
        if available:
            lines.append(f"{available} package rows; --limit 0 shows none")
        elif min_processes is not None and min_processes > 1:
            lines.append(f"no package reported by at least {min_processes} processes")
        else:
            lines.append("no package reported in this window")
        return "\n".join(lines)
    cells = [
        ([(row.namespace or NO_HUB)] if by_namespace else [])
        + [row.package, str(number(row.count)), share_text(row.share)]
        for row in rows
    ]
    offset = 1 if by_namespace else 0
    lines.append(table(columns, cells, {offset + 1, offset + 2}))
    if available > len(rows):
        lines.append(f"({available - len(rows)} more rows; raise --limit to see them)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """The ``report`` subcommand."""
    try:
        span = window(args.since, args.start, args.end)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.min_processes is not None and args.min_processes < 1:
        raise UsageError("--min-processes must be at least 1")
    if args.limit is not None and args.limit < 0:
        raise UsageError("--limit must be 0 or more")
    by_namespace = args.by == "namespace"
    source = open_source(args.db, args.prometheus)
    try:
        packages = source.packages(span, args.namespace)
        processes = source.processes(span, args.namespace)
    finally:
        source.close()
    every = top_packages(
        packages, processes, by_namespace=by_namespace, min_processes=args.min_processes
    )
    rows = top_packages(
        packages,
        processes,
        by_namespace=by_namespace,
        min_processes=args.min_processes,
        limit=args.limit,
    )
    print(
        render(
            rows,
            args.format,
            by_namespace=by_namespace,
            span=span,
            processes=processes,
            shown_before_limit=len(every),
            min_processes=args.min_processes,
            hub=args.namespace,
        )
    )
    return 0
