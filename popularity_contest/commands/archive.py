"""``popularity-contest archive``: daily counts from Prometheus-compatible APIs into the store."""

from __future__ import annotations

import argparse
import json

from popularity_contest.answers.archive import archive, as_rows, sources_from
from popularity_contest.answers.formats import table
from popularity_contest.answers.window import parse_age, parse_time
from popularity_contest.collector.settings import default_db_path
from popularity_contest.collector.store import DAY, Store
from popularity_contest.errors import UsageError


def run(args: argparse.Namespace) -> int:
    """Archive every source; exit 1 when one of them failed (its checkpoint did not move)."""
    try:
        backfill_days = max(1, round(parse_age(args.backfill) / DAY))
        until = int(parse_time(args.until)) if args.until else None
    except ValueError as error:
        raise UsageError(str(error)) from None
    apis = sources_from(args.source, args.prometheus_header, args.bearer_token_file, args.ca_file)
    with Store.open(args.db or default_db_path()) as store:
        results = archive(store, apis, backfill_days=backfill_days, until=until)
    rows = as_rows(results)
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    else:
        columns = ["source", "first_day", "last_day", "days", "counts", "error"]
        cells = [["-" if row[c] is None else str(row[c]) for c in columns] for row in rows]
        print(table(columns, cells, {3, 4}))
    return 1 if any(r.error for r in results) else 0
