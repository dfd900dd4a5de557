"""``popularity-contest archive``: daily counts from Prometheus-compatible APIs into the store."""

from __future__ import annotations

import argparse
import json
import re

from popularity_contest.answers.archive import archive, as_rows, sources_from
from popularity_contest.answers.formats import table
from popularity_contest.answers.window import parse_age, parse_time
from popularity_contest.collector.settings import default_db_path
from popularity_contest.collector.store import DAY, Store
from popularity_contest.errors import UsageError

#: ``NAME (URL): HTTP 404: <body>``, as a failed source's error reads.
_HTTP_ERROR = re.compile(r"^(?P<head>.*?: HTTP (?P<code>\d{3}))(?::\s*(?P<body>.*))?$", re.DOTALL)
#: Statuses a Prometheus-compatible API does not give for its query endpoint.
_NOT_AN_API = {404, 405, 501}
NOT_PROMETHEUS_HINT = (
    "this looks like popularity-contest serve or not a Prometheus API: give the base URL of"
    " Prometheus, Thanos Query, Mimir or VictoriaMetrics"
)
MAX_ERROR = 200


def short_error(error: str | None) -> str | None:
    """A source's error in one line: the body's first line only, and a hint when the URL
    answered like something that is not a Prometheus API (404/405/501, an HTML page, JSON
    without Prometheus's ``errorType``)."""
    if error is None:
        return None
    found = _HTTP_ERROR.match(error.strip())
    if found is None:
        return (error.strip().splitlines() or [""])[0][:MAX_ERROR]
    body = (found["body"] or "").strip()
    first = (body.splitlines() or [""])[0].strip()
    prometheus = '"errorType"' in body
    text = found["head"]
    if first and not first.startswith("<"):  # an HTML page says nothing a reader needs
        text += ": " + first[:MAX_ERROR]
    if int(found["code"]) in _NOT_AN_API or not prometheus:
        text += f" ({NOT_PROMETHEUS_HINT})"
    return text


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
    rows = [
        {**row, "error": short_error(result.error)}
        for row, result in zip(as_rows(results), results, strict=True)
    ]
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    else:
        columns = ["source", "first_day", "last_day", "days", "counts", "error"]
        cells = [["-" if row[c] is None else str(row[c]) for c in columns] for row in rows]
        print(table(columns, cells, {3, 4}))
    return 1 if any(r.error for r in results) else 0
