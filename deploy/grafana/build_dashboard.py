"""Write popularity-contest.json, the Grafana dashboard, from the queries below.

The dashboard's queries are long because they count exactly (see
``popularity_contest.answers.promql.counted``, which this script imports), and the same
counting expression appears in every panel; building the JSON from one definition keeps
them identical. Run ``python deploy/grafana/build_dashboard.py`` after editing this file;
a test fails when the committed JSON differs from what this script writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# The counting expression is the one `popularity-contest report --prometheus` sends, so the
# dashboard and the command can never disagree (see its docstring for the four cases).
from popularity_contest import names
from popularity_contest.answers.promql import counted

OUTPUT = Path(__file__).with_name("popularity-contest.json")

IMPORTED = names.IMPORTED_PACKAGE
USER_IMPORTED = names.USER_IMPORTED_PACKAGE
DIRECT = names.DIRECTLY_IMPORTED_PACKAGE
PROCESSES = names.PROCESSES_REPORTED

# The variables are named as in jupyterhub/grafana-dashboards (`PROMETHEUS_DS`, `hub`), so
# links between those dashboards and this one carry the data source and the hubs along. The
# Prometheus label stays `namespace` (the hub's namespace, as z2jh and those dashboards use);
# `counted` selects it with `$hub`.
DATASOURCE_VARIABLE = "PROMETHEUS_DS"
HUB_VARIABLE = "hub"
DATASOURCE = {"type": "prometheus", "uid": f"${{{DATASOURCE_VARIABLE}}}"}


def total_by(labels: str, metric: str, window: str) -> str:
    return f"sum by ({labels}) ({counted(metric, window)})"


def target(expr: str, legend: str = "", *, instant: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"datasource": DATASOURCE, "expr": expr, "refId": "A"}
    if instant:
        result.update(instant=True, range=False, format="table")
    else:
        result.update(instant=False, range=True, legendFormat=legend)
    return result


def table(
    panel_id: int,
    title: str,
    *,
    description: str,
    expr: str,
    grid: tuple[int, int, int, int],
    value_title: str,
    unit: str = "short",
) -> dict[str, Any]:
    x, y, w, h = grid
    return {
        "id": panel_id,
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [target(expr, instant=True)],
        "fieldConfig": {
            "defaults": {"unit": unit, "decimals": 0 if unit == "short" else 1},
            "overrides": [],
        },
        "options": {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
        "transformations": [
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True},
                    "renameByName": {"Value": value_title},
                },
            }
        ],
    }


def timeseries(
    panel_id: int,
    title: str,
    *,
    description: str,
    expr: str,
    legend: str,
    grid: tuple[int, int, int, int],
) -> dict[str, Any]:
    x, y, w, h = grid
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "interval": "5m",
        "targets": [target(expr, legend, instant=False)],
        "fieldConfig": {
            "defaults": {
                "unit": "short",
                "decimals": 0,
                "custom": {"drawStyle": "bars", "fillOpacity": 60, "stacking": {"mode": "normal"}},
            },
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "table", "placement": "right", "calcs": ["sum"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def dashboard() -> dict[str, Any]:
    in_range = "$__range"
    per_step = "$__interval"
    imported = total_by("package", IMPORTED, in_range)
    processes = f"sum({counted(PROCESSES, in_range)})"
    panels = [
        table(
            1,
            "Top packages",
            description="Processes that imported each top-level package during the dashboard's "
            "time range (each process counts a package once), whoever imported it: the "
            "process's own code or another library.",
            expr=f"sort_desc({imported})",
            grid=(0, 0, 8, 12),
            value_title="Processes",
        ),
        table(
            8,
            "Direct imports",
            description="Processes whose own code (a notebook cell, a script, python -c, the "
            "user's own modules) imported each package during the time range; a package "
            "that only other libraries imported is not here. At most its Top packages "
            "count: the difference is what came along as a dependency.",
            expr=f"sort_desc({total_by('package', DIRECT, in_range)})",
            grid=(8, 0, 8, 12),
            value_title="Processes (direct)",
        ),
        table(
            2,
            "Share of processes using each package",
            description="Processes that imported the package divided by all processes that "
            "reported, during the time range. Across a restart of the exporter both counts "
            "are lower bounds, so the share is approximate (and capped at 100%).",
            expr=f"sort_desc(clamp_max({imported} / on() group_left() ({processes} > 0), 1))",
            grid=(16, 0, 8, 12),
            value_title="Share of processes",
            unit="percentunit",
        ),
        timeseries(
            3,
            "Packages over time",
            description="Processes importing each package, per interval.",
            expr=total_by("package", IMPORTED, per_step),
            legend="{{package}}",
            grid=(0, 12, 24, 10),
        ),
        timeseries(
            4,
            "Processes reported per hub",
            description="Processes that reported, per hub (namespace) and interval. A hub "
            "whose bars drop to nothing has stopped reporting: check its user image and "
            "configuration (the PopularityContestHubSilent alert fires too).",
            expr=total_by("namespace", PROCESSES, per_step),
            legend="{{namespace}}",
            grid=(0, 22, 16, 10),
        ),
        table(
            5,
            "Processes per hub",
            description="Processes that reported during the time range; 0 means the hub is "
            "known but silent.",
            expr=f"sort({total_by('namespace', PROCESSES, in_range)})",
            grid=(16, 22, 8, 10),
            value_title="Processes",
        ),
        table(
            6,
            "Least-used packages",
            description="The 25 packages imported by the fewest processes during the time "
            "range, 0 included. Installed packages nobody imported at all are not in "
            "Prometheus: list them with `popularity-contest unused --prometheus URL`.",
            expr=f"sort(bottomk(25, {imported}))",
            grid=(0, 32, 12, 12),
            value_title="Processes",
        ),
        table(
            7,
            "Packages users installed themselves",
            description="Processes that imported a package from the user site directory "
            "(~/.local): candidates for the shared image.",
            expr=f"sort_desc({total_by('package', USER_IMPORTED, in_range)})",
            grid=(12, 32, 12, 12),
            value_title="Processes",
        ),
    ]
    return {
        "title": "Python popularity contest",
        "uid": "python-popularity-contest",
        "description": "Which installed Python packages users import (popularity-contest).",
        "tags": ["python", "popularity-contest"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-30d", "to": "now"},
        "timepicker": {},
        "refresh": "",
        "annotations": {"list": []},
        "links": [],
        "templating": {
            "list": [
                {
                    "type": "datasource",
                    "name": DATASOURCE_VARIABLE,
                    "label": "Data source",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                    "regex": "",
                },
                {
                    "type": "query",
                    "name": HUB_VARIABLE,
                    "label": "Hub",
                    "datasource": DATASOURCE,
                    "definition": f"label_values({PROCESSES}, namespace)",
                    "query": {
                        "query": f"label_values({PROCESSES}, namespace)",
                        "refId": HUB_VARIABLE,
                    },
                    "multi": True,
                    "includeAll": True,
                    "allValue": ".*",
                    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                    "refresh": 2,
                    "sort": 1,
                    "hide": 0,
                    "regex": "",
                },
            ]
        },
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render(), encoding="utf-8")
