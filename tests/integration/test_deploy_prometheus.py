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
  does to its counters): exact over a window holding the restart (a counter reset);
* phase 4, after the collector was stopped until Prometheus saw it down (its series went
  stale) and restarted with its store kept: the counters come back higher, exact;
* phase 5, produced while Prometheus was stopped, scraped by Prometheus restarted on its own
  storage: what happened during the gap counts in the window that first sees it.

tests/integration/test_deploy_promtool.py holds the same situations as promtool tables, with
gaps longer than the window; docs/concepts/counting-prometheus.md defines exact.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from popularity_contest.answers.promql import counted
from popularity_contest.answers.sources import PrometheusSource
from popularity_contest.answers.window import Window
from tests.collectorkit import Collector, free_port, wait_until
from tests.conftest import require_system
from tests.envkit import REPO, Env, clean_env
from tests.integration.prometheus import (
    SITUATIONS,
    PrometheusServer,
    expand,
    http_get,
    label_dict,
    metric_of,
    seconds,
)

DASHBOARD = REPO / "deploy/grafana/popularity-contest.json"
IMPORTED = "python_popcon_imported_package_total"
USER_IMPORTED = "python_popcon_user_imported_package_total"
PROCESSES = "python_popcon_processes_reported_total"
DIRECT = "python_popcon_directly_imported_package_total"
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
    # Each series after the restart with an empty store either is new or comes back below its
    # old value: a counter that restarts and comes back at or above its old value before the
    # window looks like one that kept counting (the documented ambiguity of counters).
    [("hub-a", ("alpha", "beta")), ("hub-b", ("delta",))],
    [("hub-a", ("alpha",)), ("hub-b", ("gamma",))],
]
# user_imported_package lines sent as raw statsd (the venv has no user site), per phase.
USER_LINES = [[], [("hub-b", "mylocal"), ("hub-b", "mylocal")], [], [], [("hub-b", "mylocal")]]
# directly_imported_package lines sent as raw statsd, per phase, for a package no process
# imports (whether the reporter sends direct counts for the processes' own imports depends
# on its version: the "Direct imports" panel is compared on DIRECT_PACKAGES only). Like
# USER_LINES, each series comes back below its old value after the restart.
DIRECT_PACKAGES = {"handmade"}
DIRECT_LINES = [
    [("hub-a", "handmade")],
    [("hub-a", "handmade"), ("hub-b", "handmade"), ("hub-b", "handmade")],
    [("hub-a", "handmade")],
    [],
    [("hub-b", "handmade")],
]

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
    for namespace, package in DIRECT_LINES[phase]:
        truth[DIRECT, namespace, package] += 1
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
            if sample.name in {IMPORTED, USER_IMPORTED, PROCESSES, DIRECT}:
                labels = sample.labels
                if sample.name == DIRECT and labels.get("package") not in DIRECT_PACKAGES:
                    continue
                value = labels.get("package", "")
                found[sample.name, labels.get("namespace", ""), value] = int(sample.value)
    return found


@dataclass
class Scenario:
    prometheus: PrometheusServer
    dashboard: dict[str, Any]
    begin: float = 0.0  # the first scrape, before anything was sent
    marks: list[float] = field(default_factory=list)  # a scrape after each phase
    # Per phase, the series the collector exposed during it (the stores it had).
    exposed: list[Counter[Key]] = field(default_factory=list)

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
        ],
        *[
            f"python_popcon.hub.{namespace}.directly_imported_package.{package}:1|c".encode()
            for namespace, package in DIRECT_LINES[phase]
        ],
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
        # Stopped until Prometheus finds it down (its series get staleness markers), then
        # back with its store: the counters continue.
        collector.close()
        prometheus.wait_for_scrape(JOB, health="down")
        collector = start_collector(
            statsd_port, http_port, work / "two.sqlite", work / "collector.log"
        )
        run_phase(env, collector, 3, scenario.truth(range(2, 4)))
        scenario.marks.append(prometheus.wait_for_scrape(JOB) + 0.01)
        # Prometheus stopped while processes report, restarted on its own storage.
        prometheus.close()
        run_phase(env, collector, 4, scenario.truth(range(2, 5)))
        prometheus = PrometheusServer(binary, work / "prometheus", {JOB: f"127.0.0.1:{http_port}"})
        scenario.prometheus = prometheus
        scenario.marks.append(prometheus.wait_for_scrape(JOB, after=0) + 0.01)
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


def panel_rows(title: str, result: list[dict[str, Any]]) -> dict[str, float]:
    """A table panel's rows by its label ("Direct imports": DIRECT_PACKAGES' rows only)."""
    rows = by_label(result, label_of(title))
    if title == "Direct imports":
        rows = {k: v for k, v in rows.items() if k in DIRECT_PACKAGES}
    return rows


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
    if title == "Direct imports":
        return total(DIRECT, "package")
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
        got = panel_rows(title, scenario.prometheus.query(query, at=end))
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
        got = panel_rows(title, scenario.prometheus.query(query, at=end))
        expected = expected_panel(title, truth, known, namespaces)
        assert got == pytest.approx(expected), title


def assert_rows(title: str, got: dict[str, float], expected: dict[str, float]) -> None:
    """Equal, except that a row counting 0 may be absent (none of its series had a sample)."""
    assert set(got) <= set(expected), (title, got, expected)
    assert got == pytest.approx({k: v for k, v in expected.items() if v or k in got}), title


# (first phase counted, last phase): windows from the scrape before the first phase (or from
# the beginning) to the scrape after the last one.
ACROSS = {
    "the-reset": (2, 2),  # the collector restarted with an empty store
    "from-the-beginning-and-the-reset": (0, 2),
    "stale-and-back-with-the-store": (3, 3),
    "prometheus-restarted": (4, 4),
    "both": (3, 4),
}


def span(scenario: Scenario, first: int, last: int) -> tuple[float, float]:
    start = scenario.begin - 1 if first == 0 else scenario.marks[first - 1]
    return start, scenario.marks[last]


@pytest.mark.parametrize("phases", list(ACROSS.values()), ids=list(ACROSS))
def test_tables_count_exactly_across_restarts_and_gaps(
    scenario: Scenario, phases: tuple[int, int]
) -> None:
    first, last = phases
    start, end = span(scenario, first, last)
    truth, known = scenario.truth(range(first, last + 1)), scenario.truth(range(last + 1))
    for title, expr in panels(scenario.dashboard, instant=True):
        query = substitute(expr, None, **window(scenario, start, end))
        got = panel_rows(title, scenario.prometheus.query(query, at=end))
        assert_rows(title, got, expected_panel(title, truth, known, None))
    top = dict(panels(scenario.dashboard, instant=True))["Top packages"]
    query = substitute(top, ("hub-b",), **window(scenario, start, end))
    got = by_label(scenario.prometheus.query(query, at=end), "package")
    if first <= 2 <= last:
        assert got["delta"] == 1  # first imported after the restart
    if first == 0:
        # Packages nobody imported after the restart keep their whole count.
        assert got["beta"] == 1
        assert got["Zeta"] == 1
    if last == 4:
        assert got["gamma"] == 1  # imported while Prometheus was down


def test_tables_give_a_lower_bound_when_a_counter_passes_its_peak_again(
    scenario: Scenario,
) -> None:
    """The documented limit: hub-b's processes counter reached 2, restarted, reached 3."""
    start, end = span(scenario, 0, 4)
    truth, known = scenario.truth(range(5)), scenario.truth(range(5))
    assert truth[PROCESSES, "hub-b", ""] == 5
    for title, expr in panels(scenario.dashboard, instant=True):
        query = substitute(expr, None, **window(scenario, start, end))
        got = panel_rows(title, scenario.prometheus.query(query, at=end))
        expected = expected_panel(title, truth, known, None)
        assert set(got) <= set(expected), title
        for row, value in got.items():
            if title.startswith("Share"):
                assert 0 <= value <= 1, (title, row, value)
            else:
                assert 0 <= value <= expected[row], (title, row, value, expected[row])
    hubs = dict(panels(scenario.dashboard, instant=True))["Processes per hub"]
    query = substitute(hubs, None, **window(scenario, start, end))
    got = by_label(scenario.prometheus.query(query, at=end), "namespace")
    assert got["hub-b"] == 3  # its last value: 2 before the restart are missed
    assert got["hub-a"] == 7  # below its peak of 4 after the restart: exact


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


def test_over_time_panels_add_up_across_restarts_and_gaps(scenario: Scenario) -> None:
    """Each bar holds at most one reset, with the counter below its peak: the sums are exact."""
    end = scenario.marks[4]
    truth = scenario.truth(range(5))
    for title, expr in panels(scenario.dashboard, instant=False):
        series = over_time(scenario, expr, scenario.begin - 1, end)
        assert all(v >= 0 and v == int(v) for values in series.values() for v in values), title
        sums = {key: sum(values) for key, values in series.items()}
        assert sums == expected_panel(title, truth, truth, None), title


# --- Known histories: the promtool tables, loaded into a real Prometheus -------------------
#
# Each situation of tests/integration/prometheus/counting_test.yaml becomes OpenMetrics history
# (its hubs renamed "<index>-<hub>" so that the situations stay apart), turned into TSDB blocks
# by `promtool tsdb create-blocks-from openmetrics` and read by a real Prometheus: gaps of
# hours cost nothing, and every value is known. Staleness markers cannot be written in
# OpenMetrics; they are left out (the scraping scenario above produces real ones).

HISTORY_START_AGO = 3 * 86400  # the histories start three days ago, on the hour


@dataclass
class History:
    prometheus: PrometheusServer
    start: float  # Unix seconds of every situation's first sample


def hub_of(index: int, namespace: str) -> str:
    return f"{index}-{namespace}"


def openmetrics(start: int) -> str:
    families: dict[str, list[str]] = {}
    for index, group in enumerate(SITUATIONS.values()):
        interval = seconds(group["interval"])
        for series in group["input_series"]:
            metric = metric_of(series["series"])
            labels = label_dict(series["series"])
            labels["namespace"] = hub_of(index, labels["namespace"])
            text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            lines = families.setdefault(metric.removesuffix("_total"), [])
            for i, value in enumerate(expand(series["values"])):
                if value is not None:
                    lines.append(f"{metric}{{{text}}} {value:g} {start + i * interval}")
    out = []
    for family, lines in families.items():
        out += [f"# TYPE {family} counter", *lines]
    return "\n".join([*out, "# EOF", ""])


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    binary = require_system("prometheus", "prometheus")
    promtool = require_system("promtool", "prometheus")
    work = tmp_path_factory.mktemp("prometheus-history")
    start = (int(time.time()) - HISTORY_START_AGO) // 3600 * 3600
    source = work / "history.om"
    source.write_text(openmetrics(start))
    data = work / "prometheus" / "data"
    created = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    with PrometheusServer(binary, work / "prometheus", {}) as prometheus:
        yield History(prometheus, start)


@pytest.mark.parametrize("name", list(SITUATIONS))
def test_real_prometheus_counts_each_situation_as_promtool_does(
    history: History, name: str
) -> None:
    index = list(SITUATIONS).index(name)
    group = SITUATIONS[name]
    default = metric_of(group["input_series"][0]["series"])
    for check in group["promql_expr_test"]:
        hub = re.escape(hub_of(index, "")).replace("\\", "\\\\") + ".*"
        query = counted(check.get("metric", default), check["window"])
        query = query.replace("$hub", hub)
        at = history.start + seconds(check["eval_time"])
        got = {}
        for series in history.prometheus.query(query, at=at):
            labels = dict(series["metric"])
            labels["namespace"] = labels["namespace"].removeprefix(hub_of(index, ""))
            got[tuple(sorted(labels.items()))] = float(series["value"][1])
        expected = {
            tuple(sorted(label_dict(sample["labels"]).items())): float(sample["value"])
            for sample in check["exp_samples"]
        }
        assert got == expected, (name, check)


def test_report_counts_the_issues_gap_as_one_import(history: History) -> None:
    """`report --prometheus` (PrometheusSource) across a two-hour gap, for a 10-minute window."""
    index = list(SITUATIONS).index("seen again after a gap longer than the window")
    hub = hub_of(index, "hub-a")
    source = PrometheusSource(history.prometheus.url)
    before = Window(history.start + 110 * 60, history.start + 120 * 60)
    after = Window(history.start + 120 * 60, history.start + 130 * 60)
    assert source.packages(before, hub) == {}
    assert source.packages(after, hub) == {(hub, "numpy"): 1.0}
    born = list(SITUATIONS).index("born inside the window and restarted in it")
    hub = hub_of(born, "hub-b")
    span = Window(history.start, history.start + 600)
    assert source.processes(span, hub) == {hub: 4.0}


# Situations whose windows tile into bars adding up to the whole: not the documented limits,
# nor a gap longer than the lookback (each bar then starts afresh where the whole does not).
TILING = [name for name in SITUATIONS if "limit" not in name and "lookback" not in name]


@pytest.mark.parametrize("name", TILING)
def test_bars_add_up_to_the_table_over_known_histories(history: History, name: str) -> None:
    """The over-time panels' windows (a range query, step = window) sum to the table's count."""
    index = list(SITUATIONS).index(name)
    group = SITUATIONS[name]
    interval = seconds(group["interval"])
    step = 5 * interval
    length = max(len(expand(series["values"])) for series in group["input_series"])
    end = history.start + -(-length * interval // step) * step
    hub = re.escape(hub_of(index, "")).replace("\\", "\\\\") + ".*"
    for metric in {metric_of(series["series"]) for series in group["input_series"]}:
        bars = counted(metric, f"{step}s").replace("$hub", hub)
        result = history.prometheus.query_range(bars, history.start, end, step)
        sums = {
            tuple(sorted(s["metric"].items())): sum(float(v) for _, v in s["values"])
            for s in result
        }
        # One window from a step before the first sample to the last bar's end.
        whole = counted(metric, f"{end - history.start + step}s").replace("$hub", hub)
        table = {
            tuple(sorted(s["metric"].items())): float(s["value"][1])
            for s in history.prometheus.query(whole, at=end)
        }
        assert sums == table, (name, metric)
        assert table, (name, metric)
        assert all(value > 0 for value in table.values()), (name, metric)
