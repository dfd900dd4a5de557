"""``popularity-contest prune``: drop junk series from the collector's store.

When the series cap is reached (``/healthz`` and the page say so), new packages and hubs are
refused until series are removed: series counted by fewer than K processes in all
(``--below K``), or whose metric name or a label value matches a glob (``--match GLOB``),
both when both are given. ``--dry-run`` lists what would go. A running ``serve`` notices at
its next flush and counts new series again; nothing needs restarting.
"""

from __future__ import annotations

import argparse
import json
import os

from popularity_contest.answers.formats import number, table
from popularity_contest.collector.settings import SERVE_DB, default_db_path
from popularity_contest.collector.store import Store
from popularity_contest.errors import UsageError

SHOWN = 50


def run(args: argparse.Namespace) -> int:
    if args.below is None and args.match is None:
        raise UsageError("say which series to drop: --below K, --match GLOB, or both")
    if args.below is not None and not args.below > 0:
        raise UsageError("--below: must be a positive number of processes")
    db = args.db or os.environ.get(SERVE_DB, "").strip() or default_db_path()
    with Store.open(os.path.expanduser(db), create=False) as store:
        gone = store.prune(below=args.below, match=args.match, dry_run=args.dry_run)
        left = len(store.series_keys())
    if args.format == "json":
        document = {
            "db": db,
            "dry_run": args.dry_run,
            "removed": [
                {"name": t.name, "labels": t.labels, "total": number(t.value)} for t in gone
            ],
            "series_left": left,
        }
        print(json.dumps(document, indent=1, ensure_ascii=False))
        return 0
    verb = "would remove" if args.dry_run else "removed"
    print(f"{db}: {verb} {len(gone)} series; {left} series in the store")
    if gone:
        rows = [
            [
                t.name,
                ",".join(f"{k}={v}" for k, v in sorted(t.labels.items())),
                str(number(t.value)),
            ]
            for t in gone[:SHOWN]
        ]
        print(table(["metric", "labels", "total"], rows, {2}))
        if len(gone) > SHOWN:
            print(f"... and {len(gone) - SHOWN} more (--format json lists them all)")
    return 0
