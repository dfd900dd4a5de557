"""deploy/prometheus/ and the counting expression pass Prometheus' own checks.

`promtool check` and `promtool test rules` for the alerting rules; `promtool test rules`
tables (tests/integration/prometheus/counting_test.yaml) for ``counted()``, the expression
the dashboard and ``report --prometheus`` count with, one test group per situation.
"""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from popularity_contest.answers.promql import LOOKBACK, counted
from tests.conftest import require_system
from tests.envkit import REPO
from tests.integration.prometheus import (
    COUNTING,
    SITUATIONS,
    expand,
    labels_of,
    metric_of,
    seconds,
)

ALERTS = REPO / "deploy/prometheus/alerts.yaml"
CONFIG = REPO / "deploy/prometheus/prometheus.yml"
ALERT_TESTS = Path(__file__).parent / "prometheus/alerts_test.yaml"


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_system("promtool", "prometheus")


def promtool_run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_alert_rules_pass_promtool_check_rules(promtool: str) -> None:
    result = promtool_run(promtool, "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rules found" in result.stdout


def test_example_prometheus_config_passes_promtool_check_config(promtool: str) -> None:
    result = promtool_run(promtool, "check", "config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def render(template: str, labels: dict[str, str]) -> str:
    """The ``{{ $labels.x }}`` templates the rules use (nothing else is used)."""
    rendered = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], template)
    assert "{{" not in rendered
    return rendered


def test_silent_hub_alert_looks_back_as_far_as_the_dashboard() -> None:
    """A scrape gap before the alert's day is bridged with the counting lookback."""
    rules = [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]
    silent = next(rule for rule in rules if rule["alert"] == "PopularityContestHubSilent")
    assert f"[{LOOKBACK}] offset 1d" in silent["expr"]
    assert "total offset" not in silent["expr"]  # no instant selector with its 5m lookback


def test_alerts_fire_for_a_silent_hub_and_unmapped_names_only(
    promtool: str, tmp_path: Path
) -> None:
    rules = {
        rule["alert"]: rule
        for group in yaml.safe_load(ALERTS.read_text())["groups"]
        for rule in group["rules"]
    }
    document: dict[str, Any] = yaml.safe_load(ALERT_TESTS.read_text())
    document["rule_files"] = [str(ALERTS)]
    for case in document["tests"]:
        for check in case["alert_rule_test"]:
            rule = rules[check["alertname"]]
            for alert in check["exp_alerts"]:
                alert["exp_annotations"] = {
                    key: render(value, alert["exp_labels"])
                    for key, value in rule["annotations"].items()
                }
    path = tmp_path / "alerts_test.yaml"
    path.write_text(yaml.safe_dump(document))
    result = promtool_run(promtool, "test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


# --- The counting expression (popularity_contest.answers.promql.counted) -------------------------


def by_definition(
    samples: list[float | None], interval: int, end: int, window: int, lookback: int
) -> float | None:
    """What counts in ``(end - window, end]``, read straight from the definition.

    Each sample adds what the counter gained since the sample before it (the previous one in
    the window, or the last one at most ``lookback`` before the window), or its whole value
    when there is none or the counter went down. ``None``: no sample in the window, no row.
    """
    timed = [(i * interval, v) for i, v in enumerate(samples) if v is not None]
    inside = [v for t, v in timed if end - window < t <= end]
    if not inside:
        return None
    earlier = [v for t, v in timed if end - window - lookback <= t <= end - window]
    previous = earlier[-1] if earlier else None
    total = 0.0
    for value in inside:
        total += value if previous is None or value < previous else value - previous
        previous = value
    return total


def check_metric(group: dict[str, Any], check: dict[str, Any]) -> str:
    metric: str = check.get("metric", metric_of(group["input_series"][0]["series"]))
    return metric


def test_counting_tables_cover_every_situation() -> None:
    names = " / ".join(SITUATIONS)
    for situation in [
        "born inside",
        "existed before",
        "gap longer than the window",
        "gap longer than the lookback",
        "exporter restarted inside",
        "exporter restarted before",
        "Prometheus restarted",
        "went stale and stayed",
        "came back lower",
        "came back higher",
    ]:
        assert situation in names


@pytest.mark.parametrize("name", list(SITUATIONS))
def test_counting_tables_hold_the_definitions_values(name: str) -> None:
    """Every expected value is the definition's (or, for a documented limit, below it)."""
    group = SITUATIONS[name]
    interval = seconds(group["interval"])
    for check in group["promql_expr_test"]:
        metric = check_metric(group, check)
        expected = {}
        for series in group["input_series"]:
            if metric_of(series["series"]) != metric:
                continue
            value = by_definition(
                expand(series["values"]),
                interval,
                seconds(check["eval_time"]),
                seconds(check["window"]),
                seconds(LOOKBACK),
            )
            if value is not None:
                expected[labels_of(series["series"])] = value
        got = {sample["labels"]: sample["value"] for sample in check["exp_samples"]}
        assert set(got) == set(expected), check
        for labels, value in got.items():
            if check.get("lower_bound"):
                assert value < expected[labels], check
            else:
                assert value == expected[labels], check


@pytest.mark.parametrize("name", list(SITUATIONS))
def test_counting_expression_passes_promtool_tables(
    promtool: str, tmp_path: Path, name: str
) -> None:
    """promtool evaluates ``counted()`` exactly as the code writes it (every hub selected)."""
    group = copy.deepcopy(SITUATIONS[name])
    for check in group["promql_expr_test"]:
        window = check.pop("window")
        metric = check_metric(group, check)
        check.pop("metric", None)
        check.pop("lower_bound", None)
        check["expr"] = counted(metric, window).replace("$hub", ".*")
    document = {"evaluation_interval": COUNTING["evaluation_interval"], "tests": [group]}
    path = tmp_path / "counting_test.yaml"
    path.write_text(yaml.safe_dump(document))
    result = promtool_run(promtool, "test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
