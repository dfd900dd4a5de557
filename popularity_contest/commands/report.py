"""``popularity-contest report``: top packages over a window, from the store or Prometheus.

Each row has two counts: ``count`` (processes that imported the package) and ``direct``
(processes whose own code imported it: a cell, a script, ``python -c``); ``--rank``
orders by either. ``--by distribution`` groups import names by the distribution providing
them in an environment (``--python``/``--prefix``, default this interpreter's); see
:mod:`popularity_contest.answers.distributions`. Every format carries the window and the
processes denominator the shares divide by:

* ``table``: a first line ``START .. END: N processes reported`` (per hub with
  ``--by hub``), then the rows (``>=N``: a lower bound; ``<K``: a direct count masked
  by the privacy threshold), then notes;
* ``json``: ``{"window": {"start", "end"}, "hub", "min_processes", "rank", "by",
  "processes", "processes_per_hub", "rows": [...]}``, each row ``{"hub"?, "package",
  "count", "direct", "share"}``; with ``--by distribution`` the document adds ``"python"``
  and ``"unattributed"`` (import names left as they are) and each row is
  ``{"hub"?, "distribution", "provided", "packages", "count", "direct",
  "count_exact", "direct_exact", "share"}``. ``direct`` is null when masked;
* ``csv``: one row per package (or distribution, ``packages`` space-separated) with
  ``window_start``, ``window_end`` and ``processes`` (the denominator of that row's share:
  its hub's with ``--by hub``) as columns, so the file needs no comment lines.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence

from popularity_contest.answers.formats import (
    count_text,
    number,
    share_text,
    table,
    terminal_text,
    to_csv,
)
from popularity_contest.answers.ranking import NO_HUB, Entry, Row, rank
from popularity_contest.answers.sources import open_source, require_hub
from popularity_contest.answers.window import Window, iso, window
from popularity_contest.errors import UsageError

#: Marks, in the table, an import name no single distribution provides.
UNATTRIBUTED = "*"


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
    ranked_by: str = "processes",
    by_distribution: bool = False,
    python: str | None = None,
    unattributed: Sequence[str] = (),
) -> str:
    """``rows`` in ``fmt``; ``shown_before_limit``: rows there were before ``--limit``."""
    if fmt == "json":
        return _json(
            rows,
            by_namespace=by_namespace,
            span=span,
            processes=processes,
            min_processes=min_processes,
            hub=hub,
            ranked_by=ranked_by,
            by_distribution=by_distribution,
            python=python,
            unattributed=unattributed,
        )
    if fmt == "csv":
        return _csv(
            rows,
            by_namespace=by_namespace,
            by_distribution=by_distribution,
            span=span,
            processes=processes,
        )
    lines = [_text_heading(span, processes, by_namespace=by_namespace)]
    available = len(rows) if shown_before_limit is None else shown_before_limit
    name = "distribution" if by_distribution else "package"
    if not rows:
        if available:
            lines.append(f"{available} {name} rows; --limit 0 shows none")
        elif min_processes is not None and min_processes > 1:
            lines.append(f"no {name} reported by at least {min_processes} processes")
        else:
            lines.append(f"no {name} reported in this window")
        return "\n".join(lines)
    lines.append(
        _text_table(
            rows,
            by_namespace=by_namespace,
            by_distribution=by_distribution,
            min_processes=min_processes,
        )
    )
    if available > len(rows):
        lines.append(f"({available - len(rows)} more rows; raise --limit to see them)")
    lines.extend(notes(rows, min_processes=min_processes, ranked_by=ranked_by, python=python))
    return "\n".join(lines)


def _json(
    rows: Sequence[Row],
    *,
    by_namespace: bool,
    span: Window,
    processes: Mapping[str, float],
    min_processes: int | None,
    hub: str | None,
    ranked_by: str,
    by_distribution: bool,
    python: str | None,
    unattributed: Sequence[str],
) -> str:
    """``--format json``: one object with the question asked, the processes and the rows."""
    grouping = (["hub"] if by_namespace else []) + (["distribution"] if by_distribution else [])
    document: dict[str, object] = {
        "window": {"start": iso(span.start), "end": iso(span.end)},
        "hub": hub,
        "min_processes": min_processes,
        "rank": ranked_by,
        "by": grouping,
        "processes": number(sum(processes.values())),
        "processes_per_hub": {ns: number(n) for ns, n in sorted(processes.items())},
    }
    if by_distribution:
        document["python"] = python
        document["unattributed"] = list(unattributed)
    document["rows"] = [row.as_dict() for row in rows]
    return json.dumps(document, indent=1, ensure_ascii=False)


def _csv(
    rows: Sequence[Row],
    *,
    by_namespace: bool,
    by_distribution: bool,
    span: Window,
    processes: Mapping[str, float],
) -> str:
    """``--format csv``: one line per row, with the window and the processes it counts."""
    total = number(sum(processes.values()))
    dicts = [row.as_dict() for row in rows]
    for d, row in zip(dicts, rows, strict=True):
        if by_distribution:
            d["packages"] = " ".join(row.packages or ())
        d["processes"] = number(processes.get(row.namespace or "", 0.0)) if by_namespace else total
        d["window_start"] = iso(span.start)
        d["window_end"] = iso(span.end)
    columns = (["hub"] if by_namespace else []) + ["distribution" if by_distribution else "package"]
    if by_distribution:
        columns += ["provided", "packages", "count", "count_exact", "direct", "direct_exact"]
    else:
        columns += ["count", "direct"]
    extra = ["share", "processes", "window_start", "window_end"]
    return to_csv(dicts, [*columns, *extra]).rstrip("\n")


def _text_heading(span: Window, processes: Mapping[str, float], *, by_namespace: bool) -> str:
    """The window and the processes reported (per hub with ``--by hub``)."""
    total = number(sum(processes.values()))
    return terminal_text(  # hub names came off the wire
        f"{iso(span.start)} .. {iso(span.end)}: {total} processes reported"
        + (
            "; " + ", ".join(f"{ns or NO_HUB} {number(n)}" for ns, n in sorted(processes.items()))
            if by_namespace and processes
            else ""
        )
    )


def _text_table(
    rows: Sequence[Row], *, by_namespace: bool, by_distribution: bool, min_processes: int | None
) -> str:
    """The rows as a text table (counts, direct imports and shares right-aligned)."""
    name = "distribution" if by_distribution else "package"
    headers = (["hub"] if by_namespace else []) + [name, "processes", "direct", "share"]
    if by_distribution:
        headers.append("packages")
    cells = []
    for row in rows:
        label = row.package + ("" if row.provided else UNATTRIBUTED)
        cell = ([(row.namespace or NO_HUB)] if by_namespace else []) + [
            label,
            count_text(row.count, row.exact),
            count_text(row.direct, row.direct_exact, min_processes),
            share_text(row.share),
        ]
        if by_distribution:
            cell.append(" ".join(row.packages or ()) if row.provided else "-")
        cells.append(cell)
    offset = 1 if by_namespace else 0
    return table(headers, cells, {offset + 1, offset + 2, offset + 3})


def notes(
    rows: Sequence[Row], *, min_processes: int | None, ranked_by: str, python: str | None
) -> list[str]:
    """The table's closing notes: what ``>=``, ``<K`` and ``*`` mean, when they appear."""
    found = []
    if ranked_by == "direct":
        found.append("ranked by direct: processes whose own code imported it")
    if any(r.direct is None for r in rows):
        found.append(
            f"<{min_processes}: direct count below the privacy threshold, not shown"
            + ("; ranked after the others" if ranked_by == "direct" else "")
        )
    if any((not r.exact and r.count > 0) or (r.direct and not r.direct_exact) for r in rows):
        found.append(
            ">=N: a lower bound, the largest count among the distribution's import names"
            " (processes exact where the reporter sends library_used)"
        )
    if any(not r.provided for r in rows):
        found.append(
            f"{UNATTRIBUTED} an import name that no single distribution of {python} provides"
            " (none, or several: a namespace package), left as it is"
        )
    return found


def run(args: argparse.Namespace) -> int:
    """The ``report`` subcommand."""
    span = asked_window(args)
    if args.limit is not None and args.limit < 0:
        raise UsageError("--limit must be 0 or more")
    grouping = set(args.by or ())
    by_namespace = "hub" in grouping
    by_distribution = "distribution" in grouping
    python: str | None = None
    installed = None
    if by_distribution:
        from popularity_contest.answers.environment import inspect, interpreter

        python = interpreter(args.python, args.prefix)
        installed = inspect(python).distributions
    elif args.python or args.prefix:
        raise UsageError("--python and --prefix name the environment for --by distribution")
    packages, direct, processes, library_used = _read(args, span, by_distribution=by_distribution)
    unattributed: list[str] = []
    if installed is not None:
        from popularity_contest.answers import distributions

        entries = distributions.group(installed, packages, direct, library_used)
        unattributed = distributions.unattributed(entries)
    else:
        entries = {key: Entry(count, direct.get(key, 0.0)) for key, count in packages.items()}

    def ranked(limit: int | None) -> list[Row]:
        return rank(
            entries,
            processes,
            by_namespace=by_namespace,
            min_processes=args.min_processes,
            limit=limit,
            by=args.rank,
        )

    every = ranked(None)
    rows = ranked(args.limit)
    print(
        render(
            rows,
            args.format,
            by_namespace=by_namespace,
            span=span,
            processes=processes,
            shown_before_limit=len(every),
            min_processes=args.min_processes,
            hub=args.hub,
            ranked_by=args.rank,
            by_distribution=by_distribution,
            python=python,
            unattributed=unattributed,
        )
    )
    return 0


def _read(
    args: argparse.Namespace, span: Window, *, by_distribution: bool
) -> tuple[
    dict[tuple[str, str], float],
    dict[tuple[str, str], float],
    dict[str, float],
    dict[tuple[str, str], float],
]:
    """(packages, direct imports, processes, library_used) from the source ``args`` name."""
    source = open_source(args.db, args.prometheus)
    try:
        require_hub(source, span, args.hub)
        packages = source.packages(span, args.hub)
        direct = source.direct(span, args.hub)
        processes = source.processes(span, args.hub)
        library_used = source.distributions(span, args.hub) if by_distribution else {}
    finally:
        source.close()
    return packages, direct, processes, library_used


def asked_window(args: argparse.Namespace) -> Window:
    """The window ``--since``/``--start``/``--end`` ask for (``report`` and ``unused``);
    UsageError for a bad one or for ``--min-processes`` below 1."""
    try:
        span = window(args.since, args.start, args.end)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.min_processes is not None and args.min_processes < 1:
        raise UsageError("--min-processes must be at least 1")
    return span
