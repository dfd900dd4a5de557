"""``popularity-contest unused``: installed distributions nobody imported in a window.

Verdicts and the promise behind them: :mod:`popularity_contest.answers.unused` and
``docs/concepts/unused.md``. Outputs:

* ``table``: one line per distribution (``processes`` is blank when hidden by the privacy
  threshold, ``>=N`` when it is a lower bound);
* ``json``: ``{"python", "window": {"start", "end"}, "hub", "min_processes",
  "activation": {"ipython": bool, "site": bool}, "candidates", "distributions": [...]}``
  (each distribution as :meth:`Judgement.as_dict`);
* ``csv``: a row per distribution, with the window's ``window_start``/``window_end`` on
  every row;
* ``requirements``: the removal candidates ``pip uninstall -r`` may act on, as
  ``name==version``, one per line (never a hidden, kept or non-pip distribution).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence

from popularity_contest.answers.environment import Environment, inspect, interpreter
from popularity_contest.answers.formats import number, table, to_csv
from popularity_contest.answers.ranking import NO_HUB
from popularity_contest.answers.sources import open_source, require_hub
from popularity_contest.answers.unused import Judgement, Verdict, imports_per_package, judge
from popularity_contest.answers.window import Window, iso
from popularity_contest.commands.report import asked_window

CSV_COLUMNS = [
    "distribution",
    "version",
    "verdict",
    "processes",
    "processes_exact",
    "manager",
    "pip_removable",
    "packages",
    "reason",
    "required_by",
    "window_start",
    "window_end",
]


def processes_text(judgement: Judgement) -> str:
    """``12``, ``>=12`` (a lower bound) or ``-`` (hidden by the privacy threshold)."""
    if judgement.processes is None:
        return "-"
    text = str(number(judgement.processes))
    return text if judgement.exact or judgement.processes == 0 else ">=" + text


def render(
    verdicts: Sequence[Judgement],
    fmt: str,
    *,
    span: Window,
    python: str,
    hub: str | None,
    environment: Environment | None = None,
    min_processes: int | None = None,
) -> str:
    """The verdicts in ``fmt`` (table, json, csv, requirements)."""
    candidates = [v for v in verdicts if v.candidate]
    if fmt == "requirements":
        return "\n".join(f"{v.distribution}=={v.version}" for v in candidates)
    dicts = [v.as_dict() for v in verdicts]
    activation = {
        method: environment.present(method) if environment is not None else False
        for method in ("ipython", "site")
    }
    if fmt == "json":
        document = {
            "python": python,
            "window": {"start": iso(span.start), "end": iso(span.end)},
            "hub": hub,
            "min_processes": min_processes,
            "activation": activation,
            "candidates": len(candidates),
            "distributions": dicts,
        }
        return json.dumps(document, indent=1, ensure_ascii=False)
    if fmt == "csv":
        flat = [
            {
                **d,
                "packages": " ".join(v.packages),
                "required_by": " ".join(v.required_by),
                "window_start": iso(span.start),
                "window_end": iso(span.end),
            }
            for d, v in zip(dicts, verdicts, strict=True)
        ]
        return to_csv(flat, CSV_COLUMNS).rstrip("\n")
    return _text(
        verdicts,
        candidates,
        span=span,
        python=python,
        hub=hub,
        activation=activation,
        min_processes=min_processes,
    )


def _text(
    verdicts: Sequence[Judgement],
    candidates: Sequence[Judgement],
    *,
    span: Window,
    python: str,
    hub: str | None,
    activation: Mapping[str, bool],
    min_processes: int | None,
) -> str:
    """The table for people: a heading, one row per distribution, then notes."""
    columns = ["distribution", "version", "verdict", "processes", "manager", "packages", "reason"]
    cells = [
        [
            v.distribution,
            v.version,
            v.verdict.value,
            processes_text(v),
            v.manager,
            " ".join(v.packages) or "-",
            v.reason,
        ]
        for v in verdicts
    ]
    unused = sum(1 for v in verdicts if v.verdict is Verdict.UNUSED)
    hub_text = "all hubs" if hub is None else hub or NO_HUB
    on = [m for m, present in activation.items() if present]
    head = [
        f"{python} ({hub_text}), {iso(span.start)} .. {iso(span.end)}:"
        f" {len(verdicts)} distributions, {unused} unused,"
        f" {len(candidates)} removal candidates for pip",
        "activation here: " + (", ".join(f"install {m}" for m in on) or "none"),
    ]
    if min_processes is not None and min_processes > 1:
        head.append(f"privacy threshold: {min_processes} processes (hidden is not unused)")
    notes = []
    if any(v.processes is not None and not v.exact and v.processes > 0 for v in verdicts):
        notes.append(
            ">=N: a lower bound, the largest count among its import names"
            " (exact where the reporter sends library_used)"
        )
    if unused > len(candidates):
        notes.append(
            f"{unused - len(candidates)} unused distributions are not pip's to remove"
            " (see manager): left out of --format requirements"
        )
    return "\n".join([*head, table(columns, cells, {3}), *notes])


def run(args: argparse.Namespace) -> int:
    """The ``unused`` subcommand."""
    span = asked_window(args)
    python = interpreter(args.python, args.prefix)
    environment = inspect(python)
    source = open_source(args.db, args.prometheus)
    try:
        require_hub(source, span, args.hub)
        packages = source.packages(span, args.hub)
        library_used = imports_per_package(source.distributions(span, args.hub))
    finally:
        source.close()
    # Every count goes in; judge() applies the privacy threshold (below it: ``hidden``).
    verdicts = judge(
        environment,
        imports_per_package(packages),
        min_processes=args.min_processes,
        span=span,
        library_used=library_used,
    )
    if not (environment.present("ipython") or environment.present("site")):
        print(
            f"popularity-contest unused: warning: {python} has no activation file"
            " (popularity-contest install ipython|site): its users' imports cannot have"
            " been observed",
            file=sys.stderr,
        )
    for problem in environment.unreadable:
        print(
            f"popularity-contest unused: warning: unreadable metadata, not judged: {problem}",
            file=sys.stderr,
        )
    print(
        render(
            verdicts,
            args.format,
            span=span,
            python=python,
            hub=args.hub,
            environment=environment,
            min_processes=args.min_processes,
        )
    )
    return 0
