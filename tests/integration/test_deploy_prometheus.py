"""The dashboard's queries, evaluated by a real Prometheus, return exactly the counts produced.

Real reporter processes in two hubs (two prefixes) and on a machine without a hub (the
default prefix) send to the real collector (``popularity-contest serve``, loading
deploy/statsd-mapping.yaml); a real Prometheus scrapes it every second. Every PromQL
expression of deploy/grafana/popularity-contest.json, with Grafana's variables substituted,
goes through Prometheus' HTTP API and is compared with what the test produced:

* phase 1, after Prometheus' first scrape: every series is born inside any window;
* phase 2, after phase 1 was scraped: a window starting between the phases counts phase 2
  only, including a package imported once, only in phase 2;
* phase 3, after the collector restarted with an empty store (what a statsd_exporter restart
  does to its counters): exact over a window holding the restart, never negative and never
  more than was produced over a window from the beginning.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.collectorkit import Collector, free_port, wait_until
from tests.conftest import require_system
from tests.envkit import REPO, Env, clean_env
from tests.integration.prometheus import PrometheusServer, http_get

DASHBOARD = REPO / "deploy/grafana/popularity-contest.json"
IMPORTED = "python_popcon_imported_package_total"
USER_IMPORTED = "python_popcon_user_imported_package_total"
PROCESSES = "python_popcon_processes_reported_total"
JOB = "popularity-contest"
HUBS = ("hub-a", "hub-b")
NO_HUB = ""  # the default prefix: one machine, no namespace
STEP = 3.0  # $__interval for the over-time panels, in seconds

# (namespace, packages imported) per process, per phase.
PHASES: list[list[tuple[str, tuple[str, ...]]]] = [
    [("hub-a", ("alpha", "beta")), ("hub-a", ("alpha",)), ("hub-b", ("alpha", "Zeta"))],
    [
        ("hub-a", ("gamma",)),  # imported once, only after the first scrapes
        ("hub-a", ("beta", "Zeta")),
        ("hub-b", ("beta",)),
        (NO_HUB, ("alpha",)),
    ],
    [("hub-a", ("alpha",)), ("hub-b", ("delta",))],
]
# user_imported_package lines sent as raw statsd (the venv has no user site), per phase.
USER_LINES = [[], [("hub-b", "mylocal"), ("hub-b", "mylocal")], []]

Key = tuple[str, str, str]  # (metric, namespace, package or "")


def prefix_for(namespace: str) -> str:
    if namespace == NO_HUB:
        return "python_popcon.imported_package"
    return f"python_popcon.hub.{namespace}.imported_package"


def phase_truth(phase: int) -> Counter[Key]:
    truth: Counter[Key] = Counter()
    for namespace, imported in PHASES[phase]:
        truth[PROCESSES, namespace, ""] += 1
        for package in imported:
            truth[IMPORTED, namespace, package] += 1
    for namespace, package in USER_LINES[phase]:
        truth[USER_IMPORTED, namespace, package] += 1
    return truth


def start_collector(statsd_port: int, http_port: int, db: Path, log: Path) -> Collector:
    """``popularity-contest serve`` on fixed ports, so that it can restart on them."""
    mapping = str(REPO / "deploy/statsd-mapping.yaml")
    return Collector(
        db, "--mapping", mapping, log=log, statsd_port=statsd_port, http_port=http_port
    )


def counts(collector: Collector) -> Counter[Key]:
    text = http_get(f"{collector.url}/metrics").decode()
    found: Counter[Key] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in {IMPORTED, USER_IMPORTED, PROCESSES}:
                labels = sample.labels
                value = labels.get("package", "")
                found[sample.name, labels.get("namespace", ""), value] = int(sample.value)
    return found


@dataclass
class Scenario:
    prometheus: PrometheusServer
    dashboard: dict[str, Any]
    begin: float = 0.0  # the first scrape, before anything was sent
    marks: list[float] = field(default_factory=list)  # a scrape after each phase

    def truth(self, phases: range) -> Counter[Key]:
        total: Counter[Key] = Counter()
        for phase in phases:
            total.update(phase_truth(phase))
        return total


def run_phase(env: Env, collector: Collector, phase: int, expected: Counter[Key]) -> None:
    processes = [
        subprocess.Popen(
            [
                str(env.python),
                "-c",
                "import popularity_contest.reporter\nimport " + ", ".join(pkgs),
            ],
            env=clean_env(
                {
                    "PYTHON_POPCONTEST_STATSD_HOST": "127.0.0.1",
                    "PYTHON_POPCONTEST_STATSD_PORT": str(collector.statsd_port),
                    "PYTHON_POPCONTEST_STATSD_PREFIX": prefix_for(namespace),
                }
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for namespace, pkgs in PHASES[phase]
    ]
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert out == err == b""
    collector.send(
        *[
            f"python_popcon.hub.{namespace}.user_imported_package.{package}:1|c".encode()
            for namespace, package in USER_LINES[phase]
        ]
    )

    def arrived() -> bool | None:
        return True if counts(collector) == +expected else None

    wait_until(arrived, f"phase {phase + 1}'s counts in the collector")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    binary = require_system("prometheus", "prometheus")
    work = tmp_path_factory.mktemp("deploy-prometheus")
    env = Env(work / "venv")
    env.add_dist("alpha", {"alpha/__init__.py": ""})
    env.add_dist("beta", {"beta.py": ""})
    env.add_dist("python-gamma", {"gamma/__init__.py": ""})
    env.add_dist("Zeta-Lib", {"Zeta/__init__.py": ""}, top_level="Zeta\n")
    env.add_dist("delta", {"delta.py": ""})

    statsd_port, http_port = free_port(socket.SOCK_DGRAM), free_port()
    collector = start_collector(statsd_port, http_port, work / "one.sqlite", work / "collector.log")
    prometheus = PrometheusServer(binary, work / "prometheus", {JOB: f"127.0.0.1:{http_port}"})
    try:
        scenario = Scenario(prometheus, json.loads(DASHBOARD.read_text("utf-8")))
        scenario.begin = prometheus.wait_for_scrape(JOB, after=0) + 0.01
        for phase in range(2):
            run_phase(env, collector, phase, scenario.truth(range(phase + 1)))
            scenario.marks.append(prometheus.wait_for_scrape(JOB) + 0.01)
        # A restart that loses the counts, as statsd_exporter's restarts do.
        collector.close()
        collector = start_collector(
            statsd_port, http_port, work / "two.sqlite", work / "collector.log"
        )
        run_phase(env, collector, 2, phase_truth(2))
        scenario.marks.append(prometheus.wait_for_scrape(JOB) + 0.01)
        yield scenario
    finally:
        collector.close()
        prometheus.close()


# --- Evaluating the dashboard -------------------------------------------------------------


def panels(dashboard: dict[str, Any], instant: bool) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
        if target["instant"] == instant
    ]


def grafana_escape(value: str) -> str:
    """Grafana's Prometheus data source escapes regex metacharacters, doubled for PromQL."""
    return "".join("\\\\" + c if c in "\\^$*+?.()|{}[]" else c for c in value)


def substitute(expr: str, namespaces: tuple[str, ...] | None, **variables: str) -> str:
    """What Grafana sends: ``None`` is "All" (its allValue), several values a regex group."""
    if namespaces is None:
        value = ".*"
    elif len(namespaces) == 1:
        value = grafana_escape(namespaces[0])
    else:
        value = "(" + "|".join(grafana_escape(n) for n in namespaces) + ")"
    expr = expr.replace("$hub", value)
    for name, text in variables.items():
        expr = expr.replace(f"${name}", text)
    assert "$" not in expr, expr
    return expr


def by_label(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    values = {}
    for series in result:
        key = series["metric"].get(label, "")
        assert key not in values
        values[key] = float(series["value"][1])
    return values


def expected_panel(
    title: str, truth: Counter[Key], known: Counter[Key], namespaces: tuple[str, ...] | None
) -> dict[str, float]:
    """The panel's rows: ``truth`` counted over every series that exists (``known``)."""

    def total(metric: str, label: str) -> dict[str, float]:
        rows: dict[str, float] = {}
        for key in known:
            if key[0] != metric or (namespaces is not None and key[1] not in namespaces):
                continue
            row = key[2] if label == "package" else key[1]
            rows[row] = rows.get(row, 0) + truth[key]
        return rows

    if title in {"Top packages", "Least-used packages", "Packages over time"}:
        return total(IMPORTED, "package")
    if title in {"Processes per hub", "Processes reported per hub"}:
        return total(PROCESSES, "namespace")
    if title == "Packages users installed themselves":
        return total(USER_IMPORTED, "package")
    if title == "Share of processes using each package":
        processes = sum(total(PROCESSES, "namespace").values())
        if not processes:
            return {}  # the query divides only by a positive number of processes
        return {k: v / processes for k, v in total(IMPORTED, "package").items()}
    raise AssertionError(f"no expectation for panel {title!r}")


def label_of(title: str) -> str:
    return "namespace" if "hub" in title else "package"


NAMESPACE_CHOICES = [None, ("hub-a",), ("hub-b",), ("hub-a", "hub-b"), ("",)]


def window(scenario: Scenario, start: float, end: float) -> dict[str, str]:
    return {"__range": f"{round((end - start) * 1000)}ms"}


@pytest.mark.parametrize("namespaces", NAMESPACE_CHOICES, ids=str)
def test_tables_count_every_series_born_in_the_range(
    scenario: Scenario, namespaces: tuple[str, ...] | None
) -> None:
    end = scenario.marks[1]
    truth = scenario.truth(range(2))
    for title, expr in panels(scenario.dashboard, instant=True):
        query = substitute(expr, namespaces, **window(scenario, scenario.begin - 1, end))
        got = by_label(scenario.prometheus.query(query, at=end), label_of(title))
        assert got == pytest.approx(expected_panel(title, truth, truth, namespaces)), title


@pytest.mark.parametrize("namespaces", NAMESPACE_CHOICES, ids=str)
def test_tables_count_only_the_range_including_packages_first_seen_in_it(
    scenario: Scenario, namespaces: tuple[str, ...] | None
) -> None:
    start, end = scenario.marks[0], scenario.marks[1]
    truth, known = phase_truth(1), scenario.truth(range(2))
    assert truth[IMPORTED, "hub-a", "gamma"] == 1
    assert known[IMPORTED, "hub-a", "gamma"] == 1
    for title, expr in panels(scenario.dashboard, instant=True):
        query = substitute(expr, namespaces, **window(scenario, start, end))
        got = by_label(scenario.prometheus.query(query, at=end), label_of(title))
        expected = expected_panel(title, truth, known, namespaces)
        assert got == pytest.approx(expected), title


@pytest.mark.parametrize("first_phase", [0, 2], ids=["from-the-beginning", "restart-only"])
def test_tables_never_inflate_or_go_negative_across_a_reset(
    scenario: Scenario, first_phase: int
) -> None:
    start = scenario.begin - 1 if first_phase == 0 else scenario.marks[1]
    end = scenario.marks[2]
    truth, known = scenario.truth(range(first_phase, 3)), scenario.truth(range(3))
    for title, expr in panels(scenario.dashboard, instant=True):
        query = substitute(expr, None, **window(scenario, start, end))
        got = by_label(scenario.prometheus.query(query, at=end), label_of(title))
        expected = expected_panel(title, truth, known, None)
        assert set(got) <= set(expected), title
        for row, value in got.items():
            if title.startswith("Share"):
                assert 0 <= value <= 1, (title, row, value)
            else:
                assert 0 <= value <= expected[row], (title, row, value, expected[row])
    top = dict(panels(scenario.dashboard, instant=True))["Top packages"]
    query = substitute(top, ("hub-b",), **window(scenario, start, end))
    got = by_label(scenario.prometheus.query(query, at=end), "package")
    assert got["delta"] == 1  # first imported after the restart
    if first_phase == 0:
        # Packages nobody imported after the restart keep their whole count.
        assert got["beta"] == 1
        assert got["Zeta"] == 1


def over_time(scenario: Scenario, expr: str, start: float, end: float) -> dict[str, list[float]]:
    """A range query the way Grafana runs it: step = $__interval, windows tiling the range."""
    steps = int((end - start) // STEP) + 1
    first = end - steps * STEP
    query = substitute(expr, None, __interval=f"{STEP:g}s")
    result = scenario.prometheus.query_range(query, first, end, STEP)
    return {
        series["metric"].get("package", series["metric"].get("namespace", "")): [
            float(v) for _, v in series["values"]
        ]
        for series in result
    }


def test_over_time_panels_add_up_to_exact_totals(scenario: Scenario) -> None:
    end = scenario.marks[1]
    truth = scenario.truth(range(2))
    for title, expr in panels(scenario.dashboard, instant=False):
        series = over_time(scenario, expr, scenario.begin - 1, end)
        assert all(v >= 0 and v == int(v) for values in series.values() for v in values), title
        sums = {key: sum(values) for key, values in series.items()}
        assert sums == expected_panel(title, truth, truth, None), title


def test_over_time_panels_never_inflate_across_a_reset(scenario: Scenario) -> None:
    end = scenario.marks[2]
    truth = scenario.truth(range(3))
    for title, expr in panels(scenario.dashboard, instant=False):
        series = over_time(scenario, expr, scenario.begin - 1, end)
        expected = expected_panel(title, truth, truth, None)
        assert set(series) == set(expected), title
        for key, values in series.items():
            assert min(values) >= 0, (title, key)
            assert sum(values) <= expected[key], (title, key, values)
