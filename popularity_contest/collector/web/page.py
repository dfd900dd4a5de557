"""The collector's page at ``/``: big numbers, top packages, per-hub breakdown, unused list.

``context(store, query, ...)`` computes what the page shows; ``render`` fills the template
``templates/page.html`` with it (tornado's template engine, every value HTML-escaped unless
the template says ``raw``); ``respond(store, target, ...)`` answers ``/`` with it (an
``api.Response``) and returns None for any other path. plotly.js comes from the ``plotly``
wheel (``plotly_directory``; the server serves it with tornado's ``StaticFileHandler``, so
nothing comes from a CDN).
Charts are plotly figures given as JSON to ``Plotly.newPlot``. Query parameters (all
optional): ``window`` (one of ``WINDOWS``), ``aggregate`` (day, week, month) and ``hub``.

Every string that came off the wire is data: HTML-escaped by the template, and escaped again
for chart labels (``charts.chart_text``; the charts are built in ``charts``), because plotly
renders HTML-like markup (``<a href>``, ``<span style>``, ``<br>``) in labels and decodes
entities.

The privacy threshold ``min_processes`` hides every package (and every hub-package pair)
reported by fewer than that many processes, in numbers, charts and tables alike.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from tornado.template import Loader

from popularity_contest.answers import unused
from popularity_contest.answers.environment import Environment, InspectError, inspect
from popularity_contest.answers.formats import count_text
from popularity_contest.answers.ranking import NO_HUB, Row, top_packages
from popularity_contest.answers.sources import SourceError, StoreSource
from popularity_contest.answers.window import Window, iso, parse_age
from popularity_contest.collector.store import Store
from popularity_contest.collector.web import charts
from popularity_contest.collector.web.api import Response

WINDOWS = ("24h", "7d", "30d", "90d", "365d")
AGGREGATES = ("day", "week", "month")
#: Rows of the package table at most (the API pages through the rest).
MAX_TABLE_ROWS = 500
PLOTLY_PATH = "/static/plotly.min.js"
TEMPLATES = Path(__file__).with_name("templates")
SERVICE_PREFIX = "JUPYTERHUB_SERVICE_PREFIX"  # set by JupyterHub for a managed service
UNUSED_CACHE_SECONDS = 300.0

#: {environment: (when inspected, its listing or why it could not be listed)}
_unused_cache: dict[str, tuple[float, Environment | InspectError]] = {}
_unused_lock = threading.Lock()


@cache
def plotly_directory() -> str | None:
    """The directory holding ``plotly.min.js`` in the installed ``plotly`` wheel, or None."""
    try:
        import plotly  # type: ignore[import-untyped]
    except ImportError:
        return None
    directory = Path(plotly.__file__).parent / "package_data"
    return str(directory) if (directory / "plotly.min.js").is_file() else None


def plotly_js() -> bytes | None:
    """plotly.js from the installed ``plotly`` wheel, or None without the collector extra."""
    directory = plotly_directory()
    return None if directory is None else (Path(directory) / "plotly.min.js").read_bytes()


@cache
def _loader() -> Loader:
    return Loader(str(TEMPLATES), autoescape="xhtml_escape")


def respond(
    store: Store,
    target: str,
    *,
    environment: str | None = None,
    min_processes: int | None = None,
    clock: Callable[[], float] = time.time,
    warnings: Sequence[str] = (),
) -> Response | None:
    """The response for ``target`` (path and query), or None when the page does not serve it.

    For ``Api``'s ``page`` hook (the server itself routes ``/`` to ``render`` through tornado).
    """
    parts = urlsplit(target)
    if parts.path not in ("/", "/index.html"):
        return None
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    try:
        body = render(
            store,
            query,
            environment=environment,
            min_processes=min_processes,
            now=clock(),
            warnings=warnings,
        )
    except SourceError as error:
        return Response(503, "text/plain; charset=utf-8", f"{error}\n".encode())
    return Response(200, "text/html; charset=utf-8", body)


def _choice(query: Mapping[str, str], name: str, choices: Sequence[str], default: str) -> str:
    value = query.get(name, default)
    return value if value in choices else default


def _num(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def _script_json(document: object) -> str:
    # Inside <script>: no "<", ">" or "&" at all (no "</script>", no "<!--"); JSON's \u
    # escapes mean the same strings.
    text = json.dumps(document, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _unused(
    environment: str,
    packages: Mapping[tuple[str, str], float],
    now: float,
    *,
    min_processes: int | None = None,
    span: Window | None = None,
    library_used: Mapping[tuple[str, str], float] | None = None,
) -> list[unused.Judgement]:
    """Verdicts for ``environment``, its listing (or failure) cached for a few minutes.

    ``packages``: every count, before the privacy threshold (``judge`` applies it: a
    distribution imported below it is ``hidden``, never a removal candidate). Raises
    ``InspectError`` when ``environment`` cannot be inspected.
    """
    with _unused_lock:
        cached = _unused_cache.get(environment)
        if cached is None or now - cached[0] > UNUSED_CACHE_SECONDS:
            listing: Environment | InspectError
            try:
                listing = inspect(environment)
            except InspectError as error:
                listing = error
            cached = _unused_cache[environment] = (now, listing)
    listing = cached[1]
    if isinstance(listing, InspectError):
        # A new exception each time: re-raising the cached one would grow its traceback.
        raise InspectError(str(listing))
    return unused.judge(
        listing,
        unused.imports_per_package(packages),
        min_processes=min_processes,
        span=span,
        library_used=unused.imports_per_package(library_used or {}),
    )


def render(
    store: Store,
    query: Mapping[str, str],
    *,
    environment: str | None = None,
    min_processes: int | None = None,
    now: float | None = None,
    warnings: Sequence[str] = (),
) -> bytes:
    """The page as UTF-8 HTML: ``context`` filled into ``templates/page.html``."""
    values = context(
        store,
        query,
        environment=environment,
        min_processes=min_processes,
        now=now,
        warnings=warnings,
    )
    return _loader().load("page.html").generate(**values)


def context(
    store: Store,
    query: Mapping[str, str],
    *,
    environment: str | None = None,
    min_processes: int | None = None,
    now: float | None = None,
    warnings: Sequence[str] = (),
) -> dict[str, object]:
    """What the page shows, as plain values for the template (strings not yet escaped)."""
    now = time.time() if now is None else now
    window_name = _choice(query, "window", WINDOWS, "30d")
    aggregate = _choice(query, "aggregate", AGGREGATES, "day")
    hubs_seen = store.namespaces()
    hub_param = query.get("hub")
    hub = hub_param if hub_param is not None and hub_param in hubs_seen else None
    span = Window(now - parse_age(window_name), now)
    clusters_seen = StoreSource(store).clusters()
    cluster_param = query.get("cluster")
    cluster = cluster_param if cluster_param in clusters_seen else None
    source = StoreSource(store, cluster=cluster)
    packages = source.packages(span, hub)
    processes = source.processes(span, hub)
    direct = source.direct(span, hub)
    total_rows = top_packages(packages, processes, direct=direct, min_processes=min_processes)
    per_hub_rows = top_packages(packages, processes, by_namespace=True, min_processes=min_processes)
    shown = {row.package for row in total_rows}
    hubs_reporting = sorted(n for n, v in processes.items() if v > 0)
    values: dict[str, object] = {
        "style": STYLE,
        "plotly": plotly_directory() is not None,
        "plotly_path": PLOTLY_PATH[1:],  # relative: works under a hub's service prefix
        **_controls(window_name, aggregate, hubs_seen, hub, span),
        # Several archived sources (`popularity-contest archive`): one at a time, or all.
        "cluster_options": [
            (name, name or "(this collector)", name == cluster) for name in clusters_seen
        ]
        if len(clusters_seen) > 1
        else [],
        "cluster_shown": cluster,
        "warnings": list(warnings),
        "numbers": [
            ("processes", _num(sum(processes.values())), "processes reported"),
            ("packages", _num(len(shown)), "distinct packages"),
            ("hubs", _num(len(hubs_reporting)), "hubs reporting"),
        ],
        "min_processes": min_processes or 1,
        "figures": charts.figures(
            store, span, aggregate, hub, total_rows, window_name=window_name, cluster=cluster
        ),
        "hub_rows": _hub_rows(hubs_reporting, processes, per_hub_rows, window_name, aggregate),
        "package_rows": _package_rows(total_rows, min_processes),
        "packages_cut": max(0, len(total_rows) - MAX_TABLE_ROWS),
        "environment": environment,
        "unused_problem": None,
        "candidates": 0,
        "verdicts": [],
        "script_json": _script_json,
    }
    if environment:
        # Aggregated over the hubs shown; below the privacy threshold means `hidden`.
        values.update(
            _unused_section(
                environment,
                packages,
                now,
                min_processes=min_processes,
                span=span,
                library_used=source.distributions(span, hub),
            )
        )
    return values


def _controls(
    window_name: str, aggregate: str, hubs_seen: Sequence[str], hub: str | None, span: Window
) -> dict[str, object]:
    """The page's form (window, period, hub) and the window and hub it shows."""
    return {
        "selects": [
            ("window", "window", WINDOWS, window_name),
            ("per", "aggregate", AGGREGATES, aggregate),
        ],
        "hub_options": [(name, name or NO_HUB, name == hub) for name in hubs_seen],
        "window_start": iso(span.start),
        "window_end": iso(span.end),
        "hub_shown": None if hub is None else (hub or NO_HUB),
    }


def _hub_rows(
    hubs_reporting: Sequence[str],
    processes: Mapping[str, float],
    per_hub_rows: Sequence[Row],
    window_name: str,
    aggregate: str,
) -> list[tuple[str, str, str, int, str]]:
    """(link, hub, processes, packages shown, top packages) per hub reporting."""
    hub_rows = []
    for name in hubs_reporting:
        rows = [r for r in per_hub_rows if (r.namespace or "") == name]
        link = "?" + urlencode({"window": window_name, "aggregate": aggregate, "hub": name})
        tops = ", ".join(f"{r.package} ({_num(r.count)})" for r in rows[:8])
        hub_rows.append((link, name or NO_HUB, _num(processes[name]), len(rows), tops))
    return hub_rows


def _package_rows(
    total_rows: Sequence[Row], min_processes: int | None
) -> list[tuple[str, str, str, str]]:
    """(package, processes, direct imports, share) for the table, ``MAX_TABLE_ROWS`` at most."""
    return [
        (
            r.package,
            _num(r.count),
            count_text(r.direct, min_processes=min_processes if min_processes else None),
            "-" if r.share is None else f"{r.share * 100:.1f}%",
        )
        for r in total_rows[:MAX_TABLE_ROWS]
    ]


def _unused_section(
    environment: str,
    packages: Mapping[tuple[str, str], float],
    now: float,
    *,
    min_processes: int | None,
    span: Window,
    library_used: Mapping[tuple[str, str], float],
) -> dict[str, object]:
    """The page's unused list: ``unused_problem``, or ``candidates`` and ``verdicts``."""
    try:
        judged = _unused(
            environment,
            packages,
            now,
            min_processes=min_processes,
            span=span,
            library_used=library_used,
        )
    except InspectError as error:
        return {"unused_problem": str(error)}
    verdicts = sorted(judged, key=lambda v: v.verdict.page_rank)
    return {
        "candidates": sum(1 for v in verdicts if v.candidate),
        "verdicts": [
            {
                "verdict": v.verdict.value,
                "distribution": v.distribution,
                "version": v.version,
                "processes": _processes(v),
                "manager": v.manager,
                "packages": " ".join(v.packages),
                "reason": v.reason,
            }
            for v in verdicts
        ],
    }


def _processes(judgement: unused.Judgement) -> str:
    if judgement.processes is None:
        return "-"  # hidden by the privacy threshold
    text = _num(judgement.processes)
    return text if judgement.exact or judgement.processes == 0 else "\u2265" + text


STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
main { max-width: 1180px; margin: 0 auto; padding: 16px 24px 40px; }
h1 { font-size: 1.6em; margin: 8px 0 12px; }
h2 { font-size: 1.2em; margin-top: 28px; }
form label { margin-right: 12px; }
.window, .note { color: #555; }
.warning { background: #fff4e5; border-left: 4px solid #d9822b; padding: 8px 12px; }
.numbers { display: flex; gap: 16px; margin: 16px 0; }
.big { background: #fff; border-radius: 8px; padding: 14px 22px; flex: 1;
       box-shadow: 0 1px 3px rgba(0,0,0,.12); }
.big .value { display: block; font-size: 2.4em; font-weight: 600; color: #3b6ea5; }
.big .label { color: #555; }
.chart { background: #fff; border-radius: 8px; margin: 14px 0; padding: 6px;
         box-shadow: 0 1px 3px rgba(0,0,0,.12); }
table { border-collapse: collapse; background: #fff; width: 100%;
        box-shadow: 0 1px 3px rgba(0,0,0,.12); }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid #e3e6ea; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.unused td { background: #fff4e5; }
tr.infrastructure td, tr.dependency td, tr.hidden td { color: #666; }
footer { margin-top: 30px; color: #777; font-size: .9em; }
footer a { margin-left: 8px; }
"""
