"""``popularity-contest unused``: installed distributions nobody imported in a window."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from popularity_contest.answers.formats import table, to_csv
from popularity_contest.answers.ranking import NO_HUB
from popularity_contest.answers.sources import open_source
from popularity_contest.answers.unused import (
    Verdict,
    imports_per_package,
    inspect,
    interpreter,
    judge,
)
from popularity_contest.answers.window import Window, window
from popularity_contest.errors import UsageError


def render(verdicts: Sequence[Verdict], fmt: str, *, span: Window, python: str, hub: str) -> str:
    dicts = [v.as_dict() for v in verdicts]
    if fmt == "json":
        return json.dumps(dicts, indent=1, ensure_ascii=False)
    if fmt == "requirements":
        return "\n".join(
            f"{v.distribution}=={v.version}" for v in verdicts if v.verdict == "unused"
        )
    columns = ["distribution", "version", "verdict", "imports", "packages", "reason"]
    if fmt == "csv":
        flat = [
            {**d, "packages": " ".join(v.packages), "required_by": " ".join(v.required_by)}
            for d, v in zip(dicts, verdicts, strict=True)
        ]
        return to_csv(flat, [*columns, "required_by"]).rstrip("\n")
    cells = [
        [
            v.distribution,
            v.version,
            v.verdict,
            str(d["imports"]),
            " ".join(v.packages) or "-",
            v.reason,
        ]
        for v, d in zip(verdicts, dicts, strict=True)
    ]
    candidates = sum(1 for v in verdicts if v.verdict == "unused")
    head = (
        f"{python} ({hub}), {len(verdicts)} distributions, {candidates} removal candidates"
        f" ({int(span.seconds // 86400)} days of imports)"
    )
    return head + "\n" + table(columns, cells, {3})


def run(args: argparse.Namespace) -> int:
    """The ``unused`` subcommand."""
    try:
        span = window(args.since, args.start, args.end)
    except ValueError as error:
        raise UsageError(str(error)) from None
    python = interpreter(args.python, args.prefix)
    installed = inspect(python)
    source = open_source(args.db, args.prometheus)
    try:
        packages = source.packages(span, args.namespace)
    finally:
        source.close()
    imports = imports_per_package(packages)
    # The privacy threshold: a package imported by fewer than K processes counts as unused
    # here too, so the list never reveals it (``used`` would).
    if args.min_processes is not None:
        imports = {p: c for p, c in imports.items() if c >= args.min_processes}
    verdicts = judge(installed, imports)
    hub = args.namespace if args.namespace is not None else "all hubs"
    print(render(verdicts, args.format, span=span, python=python, hub=hub or NO_HUB))
    return 0
