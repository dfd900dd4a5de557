"""The page's charts, as plotly figures (``(element id, {"data": [...], "layout": {...}})``).

``figures`` gives the page's three: the top packages over the window (``chart-top``), the
top ``TOP_STACKED`` packages per period (``chart-periods``) and the processes reported per hub
and period (``chart-hubs``); a chart with nothing to show is left out. Counts are processes.
Every label that came off the wire goes through ``chart_text``, because plotly renders
HTML-like markup (``<a href>``, ``<span style>``, ``<br>``) in labels and decodes entities.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime

from popularity_contest.answers.ranking import NO_HUB, Row
from popularity_contest.answers.window import Window
from popularity_contest.collector.store import Store
from popularity_contest.names import CLUSTER_LABEL, IMPORTED_PACKAGE, PROCESSES_REPORTED

TOP_CHART = 20
TOP_STACKED = 10

#: (the element's id, the plotly figure)
Figure = tuple[str, dict[str, object]]


def chart_text(value: object) -> str:
    """A label for a plotly chart: its HTML-like markup and entities shown, never obeyed."""
    return html.escape(str(value), quote=False)


def period_label(period: datetime, aggregate: str) -> str:
    """``2024-05`` for a month, ``week of 2024-05-06``, else the day ``2024-05-06``."""
    if aggregate == "month":
        return period.strftime("%Y-%m")
    if aggregate == "week":
        return "week of " + period.strftime("%Y-%m-%d")
    return period.strftime("%Y-%m-%d")


def figures(
    store: Store,
    span: Window,
    aggregate: str,
    hub: str | None,
    total_rows: Sequence[Row],
    *,
    window_name: str,
    cluster: str | None = None,
) -> list[Figure]:
    """The page's charts for ``span`` and ``hub`` (None: every hub), in the page's order;
    ``cluster``: only that archived source's series (None: all)."""
    found = [
        top_chart(total_rows, window_name),
        periods_chart(store, span, aggregate, hub, total_rows, cluster=cluster),
        hubs_chart(store, span, aggregate, hub, cluster),
    ]
    return [figure for figure in found if figure is not None]


def top_chart(total_rows: Sequence[Row], window_name: str) -> Figure | None:
    """Horizontal bars: the ``TOP_CHART`` packages with their share of processes."""
    top = total_rows[:TOP_CHART]
    if not top:
        return None
    return (
        "chart-top",
        {
            "data": [
                {
                    "type": "bar",
                    "orientation": "h",
                    "y": [chart_text(r.package) for r in reversed(top)],
                    "x": [r.count for r in reversed(top)],
                    "text": [
                        "" if r.share is None else f"{r.share * 100:.0f}%" for r in reversed(top)
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


def periods_chart(
    store: Store,
    span: Window,
    aggregate: str,
    hub: str | None,
    total_rows: Sequence[Row],
    *,
    cluster: str | None = None,
) -> Figure | None:
    """One line per top package (``TOP_STACKED``) over the periods of ``aggregate``."""
    stacked = [r.package for r in total_rows[:TOP_STACKED]]
    # Only the stacked packages' series: a few rows per period, however many packages.
    wanted = [
        dict(key[1])
        for key in store.series_keys_of(IMPORTED_PACKAGE, hub)
        if dict(key[1]).get("package") in set(stacked) and _in_cluster(dict(key[1]), cluster)
    ]
    counts = (
        store.counts(span.start, span.end, aggregate, hub, IMPORTED_PACKAGE, only=wanted)
        if wanted
        else []
    )
    periods = sorted({c.period for c in counts})
    if not (stacked and periods):
        return None
    grid = {p: dict.fromkeys(periods, 0.0) for p in stacked}
    for count in counts:
        package = count.labels.get("package", "")
        if package in grid:
            grid[package][count.period] += count.value
    return (
        "chart-periods",
        {
            # One line per package: adding packages' counts up would not count
            # processes (a process importing two packages would count twice).
            "data": [
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": chart_text(package),
                    "x": [period_label(p, aggregate) for p in periods],
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


def _in_cluster(labels: dict[str, str], cluster: str | None) -> bool:
    return cluster is None or labels.get(CLUSTER_LABEL, "") == cluster


def hubs_chart(
    store: Store, span: Window, aggregate: str, hub: str | None, cluster: str | None = None
) -> Figure | None:
    """Grouped bars: processes reported per hub and period of ``aggregate``."""
    hub_counts = [
        count
        for count in store.counts(span.start, span.end, aggregate, hub, PROCESSES_REPORTED)
        if _in_cluster(count.labels, cluster)
    ]
    if not hub_counts:
        return None
    hub_periods = sorted({c.period for c in hub_counts})
    by_hub: dict[str, dict[object, float]] = {}
    for count in hub_counts:
        name = count.labels.get("namespace", "") or NO_HUB
        row = by_hub.setdefault(name, dict.fromkeys(hub_periods, 0.0))
        row[count.period] += count.value
    return (
        "chart-hubs",
        {
            "data": [
                {
                    "type": "bar",
                    "name": chart_text(name),
                    "x": [period_label(p, aggregate) for p in hub_periods],
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
