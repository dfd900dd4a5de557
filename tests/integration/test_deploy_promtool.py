"""deploy/prometheus/ passes Prometheus' own checks: `promtool check` and `promtool test rules`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_system
from tests.envkit import REPO

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
