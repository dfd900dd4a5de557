"""The collector's page at ``/``: big numbers, top packages, per-hub breakdown, unused list.

``context(store, query, ...)`` computes what the page shows; ``render`` fills the template
``templates/page.html`` with it (its style in ``templates/page.css``; tornado's template
engine, every value HTML-escaped unless the template says ``raw``); ``respond(store,
target, ...)`` answers ``/`` with it (an ``api.Response``) and returns None for any other
path. plotly.js comes from the ``plotly`` wheel (``plotly_directory``; the server serves it
with tornado's ``StaticFileHandler``, so nothing comes from a CDN). Charts are plotly figures
given as JSON to ``Plotly.newPlot``. Query parameters (all optional, read into a
``Selection``; an unknown value means the default): ``window`` (one of ``WINDOWS``),
``aggregate`` (day, week, month), ``hub`` and ``cluster``.

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
from dataclasses import dataclass
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
    chosen = _selection(store, query, now)
    span, hub = chosen.span, chosen.hub
    source = StoreSource(store, cluster=chosen.cluster)
    packages = source.packages(span, hub)
    processes = source.processes(span, hub)
    direct = source.direct(span, hub)
    total_rows = top_packages(packages, processes, direct=direct, min_processes=min_processes)
    per_hub_rows = top_packages(packages, processes, by_namespace=True, min_processes=min_processes)
    shown = {row.package for row in total_rows}
    hubs_reporting = sorted(n for n, v in processes.items() if v > 0)
    values: dict[str, object] = {
        "plotly": plotly_directory() is not None,
        "plotly_path": PLOTLY_PATH[1:],  # relative: works under a hub's service prefix
        **_controls(chosen),
        "warnings": list(warnings),
        "numbers": [
            ("processes", _num(sum(processes.values())), "processes reported"),
            ("packages", _num(len(shown)), "distinct packages"),
            ("hubs", _num(len(hubs_reporting)), "hubs reporting"),
        ],
        "min_processes": min_processes or 1,
        "figures": charts.figures(
            store,
            span,
            chosen.aggregate,
            hub,
            total_rows,
            window_name=chosen.window_name,
            cluster=chosen.cluster,
        ),
        "hub_rows": _hub_rows(hubs_reporting, processes, per_hub_rows, chosen),
        "package_rows": _package_rows(total_rows, min_processes),
        "packages_cut": max(0, len(total_rows) - MAX_TABLE_ROWS),
        "environment": environment,
        **_unused_section(environment, source, chosen, packages, now, min_processes=min_processes),
        "script_json": _script_json,
    }
    return values


@dataclass(frozen=True)
class Selection:
    """What the query asks the page to show, each choice checked against what exists."""

    window_name: str  # one of WINDOWS
    aggregate: str  # one of AGGREGATES
    span: Window
    hubs_seen: list[str]
    hub: str | None  # None: every hub
    clusters_seen: list[str]
    cluster: str | None  # None: every cluster


def _selection(store: Store, query: Mapping[str, str], now: float) -> Selection:
    """The query's window, period, hub and cluster; an unknown value means the default."""
    window_name = _choice(query, "window", WINDOWS, "30d")
    hubs_seen = store.namespaces()
    hub = query.get("hub")
    clusters_seen = StoreSource(store).clusters()
    cluster = query.get("cluster")
    return Selection(
        window_name=window_name,
        aggregate=_choice(query, "aggregate", AGGREGATES, "day"),
        span=Window(now - parse_age(window_name), now),
        hubs_seen=hubs_seen,
        hub=hub if hub is not None and hub in hubs_seen else None,
        clusters_seen=clusters_seen,
        cluster=cluster if cluster in clusters_seen else None,
    )


def _controls(chosen: Selection) -> dict[str, object]:
    """The page's form (window, period, hub, cluster) and the window and hub it shows."""
    clusters = chosen.clusters_seen
    return {
        "selects": [
            ("window", "window", WINDOWS, chosen.window_name),
            ("per", "aggregate", AGGREGATES, chosen.aggregate),
        ],
        "hub_options": [(name, name or NO_HUB, name == chosen.hub) for name in chosen.hubs_seen],
        "window_start": iso(chosen.span.start),
        "window_end": iso(chosen.span.end),
        "hub_shown": None if chosen.hub is None else (chosen.hub or NO_HUB),
        # Several archived sources (`popularity-contest archive`): one at a time, or all.
        "cluster_options": [
            (name, name or "(this collector)", name == chosen.cluster) for name in clusters
        ]
        if len(clusters) > 1
        else [],
        "cluster_shown": chosen.cluster,
    }


def _hub_rows(
    hubs_reporting: Sequence[str],
    processes: Mapping[str, float],
    per_hub_rows: Sequence[Row],
    chosen: Selection,
) -> list[tuple[str, str, str, int, str]]:
    """(link, hub, processes, packages shown, top packages) per hub reporting."""
    hub_rows = []
    for name in hubs_reporting:
        rows = [r for r in per_hub_rows if (r.namespace or "") == name]
        query = {"window": chosen.window_name, "aggregate": chosen.aggregate, "hub": name}
        link = "?" + urlencode(query)
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
    environment: str | None,
    source: StoreSource,
    chosen: Selection,
    packages: Mapping[tuple[str, str], float],
    now: float,
    *,
    min_processes: int | None,
) -> dict[str, object]:
    """The page's unused list: ``unused_problem``, or ``candidates`` and ``verdicts`` (none
    without an ``environment``). Aggregated over the hubs shown; below the privacy threshold
    a distribution is ``hidden``."""
    empty: dict[str, object] = {"unused_problem": None, "candidates": 0, "verdicts": []}
    if not environment:
        return empty
    try:
        judged = _unused(
            environment,
            packages,
            now,
            min_processes=min_processes,
            span=chosen.span,
            library_used=source.distributions(chosen.span, chosen.hub),
        )
    except InspectError as error:
        return {**empty, "unused_problem": str(error)}
    verdicts = sorted(judged, key=lambda v: v.verdict.page_rank)
    return {
        "unused_problem": None,
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
