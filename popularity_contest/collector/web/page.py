"""The collector's page at ``/``: big numbers, top packages, per-hub breakdown, unused list.

``respond(store, target, ...)`` answers ``/`` (the HTML page) and ``/static/plotly.min.js``
(the plotly.js bundled inside the ``plotly`` wheel, so nothing comes from a CDN), and
returns None for any other path. The page is plain HTML drawn on the server; charts are
plotly figures given as JSON to ``Plotly.newPlot``. Query parameters (all optional):
``window`` (one of ``WINDOWS``), ``aggregate`` (day, week, month) and ``hub``.

The privacy threshold ``min_processes`` hides every package (and every hub-package pair)
reported by fewer than that many processes, in numbers, charts and tables alike.
"""

from __future__ import annotations

import html
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from urllib.parse import parse_qs, urlencode, urlsplit

from popularity_contest.answers import unused
from popularity_contest.answers.ranking import NO_HUB, top_packages
from popularity_contest.answers.sources import SourceError, StoreSource
from popularity_contest.answers.window import Window, iso, parse_age
from popularity_contest.collector.store import Store
from popularity_contest.names import IMPORTED_PACKAGE, PROCESSES_REPORTED

WINDOWS = ("24h", "7d", "30d", "90d", "365d")
AGGREGATES = ("day", "week", "month")
TOP_CHART = 20
TOP_STACKED = 10
PLOTLY_PATH = "/static/plotly.min.js"
SERVICE_PREFIX = "JUPYTERHUB_SERVICE_PREFIX"  # set by JupyterHub for a managed service
UNUSED_CACHE_SECONDS = 300.0
# Candidates first; the rest as answers.unused.VERDICTS names them.
PAGE_ORDER = (
    "unused",
    "hidden",
    "dependency",
    "used",
    "commands",
    "startup",
    "local",
    "infrastructure",
)

#: (status, content type, body)
Reply = tuple[int, str, bytes]

_plotly_js: bytes | None = None
_unused_cache: dict[str, tuple[float, unused.Environment | str]] = {}
_unused_lock = threading.Lock()


def plotly_js() -> bytes | None:
    """plotly.js from the installed ``plotly`` wheel, or None without the collector extra."""
    global _plotly_js  # noqa: PLW0603 - read once, 4 MB, shared by every request
    if _plotly_js is None:
        try:
            from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]
        except ImportError:
            return None
        _plotly_js = str(get_plotlyjs()).encode("utf-8")
    return _plotly_js


def respond(
    store: Store,
    target: str,
    *,
    environment: str | None = None,
    min_processes: int | None = None,
    clock: Callable[[], float] = time.time,
) -> Reply | None:
    """The reply for ``target`` (path and query), or None when the page does not serve it."""
    parts = urlsplit(target)
    if parts.path == PLOTLY_PATH:
        script = plotly_js()
        if script is None:
            return 404, "text/plain; charset=utf-8", b"plotly is not installed\n"
        return 200, "application/javascript; charset=utf-8", script
    if parts.path in ("/", "/index.html"):
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            body = render(
                store,
                query,
                environment=environment,
                min_processes=min_processes,
                now=clock(),
            )
        except SourceError as error:
            return 503, "text/plain; charset=utf-8", f"{error}\n".encode()
        return 200, "text/html; charset=utf-8", body
    return None


def _choice(query: Mapping[str, str], name: str, choices: Sequence[str], default: str) -> str:
    value = query.get(name, default)
    return value if value in choices else default


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def _script_json(document: object) -> str:
    # Inside <script>, "</" would end the element; JSON allows "<\/".
    return json.dumps(document, separators=(",", ":")).replace("</", "<\\/")


def _unused(
    environment: str,
    packages: Mapping[tuple[str, str], float],
    now: float,
    *,
    min_processes: int | None = None,
    span: Window | None = None,
    library_used: Mapping[tuple[str, str], float] | None = None,
) -> list[unused.Verdict] | str:
    """Verdicts for ``environment`` (its listing cached for a few minutes), or an error text.

    ``packages``: every count, before the privacy threshold (``judge`` applies it: a
    distribution imported below it is ``hidden``, never a removal candidate).
    """
    with _unused_lock:
        cached = _unused_cache.get(environment)
        if cached is None or now - cached[0] > UNUSED_CACHE_SECONDS:
            listing: unused.Environment | str
            try:
                listing = unused.inspect(environment)
            except unused.InspectError as error:
                listing = str(error)
            cached = _unused_cache[environment] = (now, listing)
    listing = cached[1]
    if isinstance(listing, str):
        return listing
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
) -> bytes:
    """The page as UTF-8 HTML."""
    now = time.time() if now is None else now
    window_name = _choice(query, "window", WINDOWS, "30d")
    aggregate = _choice(query, "aggregate", AGGREGATES, "day")
    hubs_seen = store.namespaces()
    hub_param = query.get("hub")
    hub = hub_param if hub_param is not None and hub_param in hubs_seen else None
    span = Window(now - parse_age(window_name), now)
    source = StoreSource(store)
    packages = source.packages(span, hub)
    processes = source.processes(span, hub)
    total_rows = top_packages(packages, processes, min_processes=min_processes)
    per_hub_rows = top_packages(packages, processes, by_namespace=True, min_processes=min_processes)
    shown = {row.package for row in total_rows}

    figures: list[tuple[str, dict[str, object]]] = []
    top = total_rows[:TOP_CHART]
    if top:
        figures.append(
            (
                "chart-top",
                {
                    "data": [
                        {
                            "type": "bar",
                            "orientation": "h",
                            "y": [r.package for r in reversed(top)],
                            "x": [r.count for r in reversed(top)],
                            "text": [
                                "" if r.share is None else f"{r.share * 100:.0f}%"
                                for r in reversed(top)
                            ],
                            "textposition": "auto",
                            "marker": {"color": "#3b6ea5"},
                            "hovertemplate": "%{y}: %{x} processes (%{text})<extra></extra>",
                        }
                    ],
                    "layout": {
                        "title": {"text": f"Top packages, last {window_name}"},
                        "xaxis": {"title": {"text": "processes that imported it"}},
                        "margin": {"l": 140, "r": 20, "t": 50, "b": 50},
                        "height": max(260, 30 * len(top) + 110),
                    },
                },
            )
        )
    counts = store.counts(span.start, span.end, aggregate, hub, IMPORTED_PACKAGE)
    stacked = [r.package for r in total_rows[:TOP_STACKED]]
    periods = sorted({c.period for c in counts})
    if stacked and periods:
        grid = {p: dict.fromkeys(periods, 0.0) for p in stacked}
        for count in counts:
            package = count.labels.get("package", "")
            if package in grid:
                grid[package][count.period] += count.value
        figures.append(
            (
                "chart-periods",
                {
                    # One line per package: adding packages' counts up would not count
                    # processes (a process importing two packages would count twice).
                    "data": [
                        {
                            "type": "scatter",
                            "mode": "lines+markers",
                            "name": package,
                            "x": [_period_label(p, aggregate) for p in periods],
                            "y": list(grid[package].values()),
                        }
                        for package in stacked
                    ],
                    "layout": {
                        "title": {"text": f"Top {len(stacked)} packages per {aggregate}"},
                        "xaxis": {"type": "category"},
                        "yaxis": {"title": {"text": "processes that imported it"}},
                        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
                        "height": 380,
                    },
                },
            )
        )
    hub_counts = store.counts(span.start, span.end, aggregate, hub, PROCESSES_REPORTED)
    if hub_counts:
        hub_periods = sorted({c.period for c in hub_counts})
        by_hub: dict[str, dict[object, float]] = {}
        for count in hub_counts:
            name = count.labels.get("namespace", "") or NO_HUB
            row = by_hub.setdefault(name, dict.fromkeys(hub_periods, 0.0))
            row[count.period] += count.value
        figures.append(
            (
                "chart-hubs",
                {
                    "data": [
                        {
                            "type": "bar",
                            "name": name,
                            "x": [_period_label(p, aggregate) for p in hub_periods],
                            "y": list(values.values()),
                        }
                        for name, values in sorted(by_hub.items())
                    ],
                    "layout": {
                        "title": {"text": f"Processes reported per hub and {aggregate}"},
                        "barmode": "group",
                        "xaxis": {"type": "category"},
                        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
                        "height": 320,
                    },
                },
            )
        )

    out: list[str] = []
    add = out.append
    add("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>")
    add("<meta name='viewport' content='width=device-width, initial-scale=1'>")
    add("<title>popularity-contest</title>")
    add(f"<style>{STYLE}</style>")
    if figures and plotly_js() is not None:
        add(f"<script src='{PLOTLY_PATH[1:]}'></script>")  # relative: works under a prefix
    add("</head><body><main>")
    add("<h1>Which installed packages people import</h1>")
    add("<form method='get'>")
    add(_select("window", "window", WINDOWS, window_name))
    add(_select("per", "aggregate", AGGREGATES, aggregate))
    add("<label>hub <select name='hub'><option value='*'>all hubs</option>")
    for name in hubs_seen:
        selected = " selected" if name == hub else ""
        add(f"<option value='{_esc(name)}'{selected}>{_esc(name or NO_HUB)}</option>")
    add("</select></label> <button type='submit'>show</button></form>")
    add(f"<p class='window'>{_esc(iso(span.start))} to {_esc(iso(span.end))}")
    if hub is not None:
        add(f", hub <b>{_esc(hub or NO_HUB)}</b>")
    add("</p>")

    hubs_reporting = sorted(n for n, v in processes.items() if v > 0)
    add("<section class='numbers'>")
    for ident, value, label in (
        ("processes", _num(sum(processes.values())), "processes reported"),
        ("packages", _num(len(shown)), "distinct packages"),
        ("hubs", _num(len(hubs_reporting)), "hubs reporting"),
    ):
        add(
            f"<div class='big'><span id='{ident}' class='value'>{value}</span>"
            f"<span class='label'>{label}</span></div>"
        )
    add("</section>")
    if min_processes is not None and min_processes > 1:
        add(
            f"<p class='note'>Privacy threshold: packages reported by fewer than"
            f" {min_processes} processes are not shown. Hidden is not unused: in the"
            " installed list below they are <code>hidden</code>, kept, never removal"
            " candidates.</p>"
        )

    if figures:
        if plotly_js() is None:
            add(
                "<p class='note'>Charts need plotly:"
                " pip install 'popularity-contest[collector]'.</p>"
            )
        for ident, _figure in figures:
            add(f"<div id='{ident}' class='chart'></div>")
    else:
        add("<p class='note'>Nothing reported in this window yet.</p>")

    add("<h2>Per hub</h2>")
    if hubs_reporting:
        add("<table id='hubs'><tr><th>hub</th><th>processes</th><th>packages</th>")
        add("<th>top packages</th></tr>")
        for name in hubs_reporting:
            rows = [r for r in per_hub_rows if (r.namespace or "") == name]
            tops = ", ".join(f"{_esc(r.package)} ({_num(r.count)})" for r in rows[:8])
            link = "?" + urlencode({"window": window_name, "aggregate": aggregate, "hub": name})
            add(
                f"<tr><td><a href='{_esc(link)}'>{_esc(name or NO_HUB)}</a></td>"
                f"<td class='n'>{_num(processes[name])}</td><td class='n'>{len(rows)}</td>"
                f"<td>{tops or '-'}</td></tr>"
            )
        add("</table>")
    else:
        add("<p class='note'>No hub reported in this window.</p>")

    add("<h2>All packages</h2>")
    if total_rows:
        add("<table id='packages'><tr><th>package</th><th>processes</th><th>share</th></tr>")
        for r in total_rows:
            share = "-" if r.share is None else f"{r.share * 100:.1f}%"
            add(
                f"<tr><td>{_esc(r.package)}</td><td class='n'>{_num(r.count)}</td>"
                f"<td class='n'>{share}</td></tr>"
            )
        add("</table>")
    else:
        add("<p class='note'>No package to show.</p>")

    if environment:
        add(f"<h2>Installed in {_esc(environment)}</h2>")
        # Aggregated over the hubs shown; below the privacy threshold means `hidden`.
        verdicts = _unused(
            environment,
            packages,
            now,
            min_processes=min_processes,
            span=span,
            library_used=source.distributions(span, hub),
        )
        if isinstance(verdicts, str):
            add(f"<p class='note'>{_esc(verdicts)}</p>")
        else:
            verdicts = sorted(verdicts, key=lambda v: PAGE_ORDER.index(v.verdict))
            candidates = sum(1 for v in verdicts if v.candidate)
            add(
                f"<p id='candidates'>{candidates} removal candidates: installed by pip,"
                " not imported in this window, needed by nothing kept (see"
                " <code>popularity-contest unused</code>). A package imported by fewer"
                " processes than the privacy threshold is <code>hidden</code>: hidden is"
                " not unused.</p>"
            )
            add(
                "<table id='unused'><tr><th>distribution</th><th>version</th>"
                "<th>verdict</th><th>processes</th><th>managed by</th><th>packages</th>"
                "<th>why</th></tr>"
            )
            for v in verdicts:
                add(
                    f"<tr class='{_esc(v.verdict)}'><td>{_esc(v.distribution)}</td>"
                    f"<td>{_esc(v.version)}</td><td>{_esc(v.verdict)}</td>"
                    f"<td class='n'>{_processes(v)}</td><td>{_esc(v.manager)}</td>"
                    f"<td>{_esc(' '.join(v.packages))}</td>"
                    f"<td>{_esc(v.reason)}</td></tr>"
                )
            add("</table>")

    add(
        "<footer>popularity-contest: counts of top-level packages imported, once per process;"
        "  nothing about who imported them. <a href='metrics'>/metrics</a>"
        " <a href='api/v1/packages'>/api/v1/packages</a></footer>"
    )
    add("</main>")
    if figures and plotly_js() is not None:
        add("<script>")
        for ident, figure in figures:
            add(
                f"Plotly.newPlot({_script_json(ident)}, {_script_json(figure['data'])},"
                f" {_script_json(figure['layout'])}, {{displaylogo: false, responsive: true}});"
            )
        add("</script>")
    add("</body></html>\n")
    return "\n".join(out).encode("utf-8")


def _processes(verdict: unused.Verdict) -> str:
    if verdict.processes is None:
        return "-"  # hidden by the privacy threshold
    text = _num(verdict.processes)
    return text if verdict.exact or verdict.processes == 0 else "&ge;" + text


def _period_label(period: datetime, aggregate: str) -> str:
    if aggregate == "month":
        return period.strftime("%Y-%m")
    if aggregate == "week":
        return "week of " + period.strftime("%Y-%m-%d")
    return period.strftime("%Y-%m-%d")


def _select(label: str, name: str, choices: Sequence[str], current: str) -> str:
    options = "".join(
        f"<option{' selected' if c == current else ''}>{_esc(c)}</option>" for c in choices
    )
    return f"<label>{_esc(label)} <select name='{_esc(name)}'>{options}</select></label> "


STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
main { max-width: 1180px; margin: 0 auto; padding: 16px 24px 40px; }
h1 { font-size: 1.6em; margin: 8px 0 12px; }
h2 { font-size: 1.2em; margin-top: 28px; }
form label { margin-right: 12px; }
.window, .note { color: #555; }
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


def hook(
    environment: str | None, min_processes: int | None, prefix: str | None = None
) -> Callable[[Store, str], Reply | None]:
    """What ``serve`` hands its HTTP server: ``hook(...)(store, target)`` -> reply or None.

    Run as a JupyterHub service, requests arrive with the service's prefix
    (``JUPYTERHUB_SERVICE_PREFIX``, e.g. ``/services/popularity-contest/``): the page is
    served there too, and its links are relative, so they stay under the prefix.
    """
    prefix = (prefix if prefix is not None else os.environ.get(SERVICE_PREFIX, "")).rstrip("/")

    def serve_page(store: Store, target: str) -> Reply | None:
        if prefix and (target == prefix or target.startswith(prefix + "/")):
            target = "/" + target[len(prefix) :].lstrip("/")
        return respond(store, target, environment=environment, min_processes=min_processes)

    return serve_page
