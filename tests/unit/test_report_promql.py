"""``report --prometheus`` asks Prometheus exactly what the Grafana dashboard asks."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from popularity_contest.answers.promql import LOOKBACK, PROMQL, counted
from tests.envkit import REPO

DASHBOARD = REPO / "deploy/grafana/popularity-contest.json"
IMPORTED = "python_popcon_imported_package_total"
PROCESSES = "python_popcon_processes_reported_total"


@pytest.fixture(scope="module")
def expressions() -> dict[str, str]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return {
        panel["title"]: panel["targets"][0]["expr"]
        for panel in document["panels"]
        if panel.get("targets")
    }


def test_package_counts_are_the_top_packages_panels_grouped_by_hub_too(
    expressions: dict[str, str],
) -> None:
    panel = expressions["Top packages"]
    assert panel == f"sort_desc(sum by (package) ({counted(IMPORTED, '$__range')}))"
    assert PROMQL["packages"] == f"sum by (namespace, package) ({counted(IMPORTED, '$__range')})"


def test_process_counts_are_the_processes_per_hub_panel(expressions: dict[str, str]) -> None:
    assert expressions["Processes per hub"] == f"sort({PROMQL['processes']})"


@pytest.mark.parametrize(
    "title", ["Top packages", "Share of processes using each package", "Least-used packages"]
)
def test_package_panels_count_each_series_like_report(
    expressions: dict[str, str], title: str
) -> None:
    assert counted(IMPORTED, "$__range") in expressions[title]


@pytest.mark.parametrize("title", ["Packages over time", "Processes reported per hub"])
def test_over_time_panels_count_each_interval_the_same_way(
    expressions: dict[str, str], title: str
) -> None:
    metric = IMPORTED if "Packages" in title else PROCESSES
    assert counted(metric, "$__interval") in expressions[title]


def test_the_sample_before_a_window_is_looked_up_within_the_documented_lookback() -> None:
    expression = counted(IMPORTED, "10m", "3h")
    assert "[3h] offset 10m" in expression
    # Never an instant selector (its 5m lookback would turn a longer gap into a new series).
    assert re.findall(r"[\]}] offset", expression) == ["] offset"] * expression.count("offset")
    assert counted(IMPORTED, "10m") == counted(IMPORTED, "10m", LOOKBACK)
    assert all(f"[{LOOKBACK}] offset" in query for query in PROMQL.values())


def test_direct_imports_panel_is_report_direct_query_beside_top_packages(
    expressions: dict[str, str],
) -> None:
    direct = "python_popcon_directly_imported_package_total"
    panel = expressions["Direct imports"]
    assert panel == f"sort_desc(sum by (package) ({counted(direct, '$__range')}))"
    assert PROMQL["direct"] == f"sum by (namespace, package) ({counted(direct, '$__range')})"
