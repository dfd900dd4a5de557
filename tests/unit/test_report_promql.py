"""``report --prometheus`` asks Prometheus exactly what the Grafana dashboard asks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from popularity_contest.answers.sources import PROMQL, counted
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
