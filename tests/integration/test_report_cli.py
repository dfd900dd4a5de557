"""``report`` and ``unused`` against a real collector fed by real reporter processes.

A hand-made venv holds a few small distributions; real Python processes in that venv
activate the reporter and import some of them, as two hubs and as a machine without a hub,
sending to ``popularity-contest serve`` (a subprocess). The CLI then reads the collector's
store, and a real Prometheus that scraped the collector, and must give exactly the counts
the processes produced.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.collectorkit import Collector, wait_until
from tests.conftest import require_system
from tests.envkit import REPO, Env, clean_env
from tests.integration.prometheus import PrometheusServer

NO_HUB = ""
# (hub, packages imported) for each reporter process.
PROCESSES: list[tuple[str, tuple[str, ...]]] = [
    ("hub-a", ("alpha",)),
    ("hub-a", ("alpha", "beta")),
    ("hub-a", ("alpha", "delta")),
    ("hub-a", ("rare",)),
    ("hub-b", ("alpha",)),
    ("hub-b", ("beta",)),
    (NO_HUB, ("delta",)),
]


def truth(hub: str | None = None) -> tuple[Counter[str], int]:
    """(processes per package, processes) for one hub or all."""
    packages: Counter[str] = Counter()
    processes = 0
    for namespace, imported in PROCESSES:
        if hub is None or namespace == hub:
            processes += 1
            packages.update(imported)
    return packages, processes


def build_env(root: Path) -> Env:
    """alpha needs alpha-core needs alpha-base; tool has a command and needs tool-lib."""
    env = Env(root)

    def dist(name: str, package: str, requires: tuple[str, ...] = (), script: bool = False) -> None:
        info = env.add_dist(name, {f"{package}/__init__.py": "VALUE = 1\n"})
        (info / "INSTALLER").write_text("pip\n")  # as pip writes it: pip may remove it
        if requires:
            with (info / "METADATA").open("a") as metadata:
                for requirement in requires:
                    metadata.write(f"Requires-Dist: {requirement}\n")
        if script:
            (info / "entry_points.txt").write_text(
                f"[console_scripts]\n{package} = {package}:main\n"
            )

    dist("alpha", "alpha", ("alpha-core>=1", 'alpha-extra; extra == "all"'))
    dist("alpha-core", "alpha_core", ('alpha_base; python_version >= "3"',))
    dist("alpha_base", "alpha_base")
    dist("alpha-extra", "alpha_extra")  # only wanted by an extra: not a dependency
    dist("beta", "beta")
    dist("gamma", "gamma")
    dist("python-delta", "delta")  # package name differs from the distribution's
    dist("rare", "rare")
    dist("tool", "tool", ("tool-lib",), script=True)
    dist("tool-lib", "tool_lib")
    # A Jupyter server extension enabled in the environment's config, and a JupyterLab
    # extension that has no Python package at all: both infrastructure.
    dist("srv-ext", "srvext")
    config = env.root / "etc/jupyter/jupyter_server_config.d/srvext.json"
    config.parent.mkdir(parents=True)
    config.write_text('{"ServerApp": {"jpserver_extensions": {"srvext": true}}}')
    env.add_dist("lab-theme", {"../../../share/jupyter/labextensions/lab-theme/package.json": "{}"})
    return env


def start_collector(root: Path, *extra: str, env: dict[str, str] | None = None) -> Collector:
    """``popularity-contest serve`` on OS-assigned loopback ports, flushing every 50 ms."""
    return Collector(
        root / "popcon.sqlite3",
        *extra,
        log=root / "collector.log",
        env={
            "PYTHON_POPCONTEST_DISABLE": "1",
            "PYTHON_POPCONTEST_SERVE_FLUSH_INTERVAL": "0.05",
            **(env or {}),
        },
    )


def stored_processes(collector: Collector) -> int:
    document = json.loads(collector.read("/api/v1/packages?metric=processes_reported"))
    return sum(int(row["count"]) for row in document["totals"])


def feed(env: Env, collector: Collector) -> None:
    """Run every reporter process of PROCESSES and wait until the collector stored them."""
    for hub, imported in PROCESSES:
        prefix = (
            f"python_popcon.hub.{hub}.imported_package" if hub else "python_popcon.imported_package"
        )
        code = "import popularity_contest.reporter\n" + "".join(f"import {p}\n" for p in imported)
        done = env.run(
            code,
            env={
                "PYTHON_POPCONTEST_STATSD_HOST": "127.0.0.1",
                "PYTHON_POPCONTEST_STATSD_PORT": str(collector.statsd_port),
                "PYTHON_POPCONTEST_STATSD_PREFIX": prefix,
            },
        )
        assert done.returncode == 0, done.stderr
    wait_until(
        lambda: True if stored_processes(collector) == len(PROCESSES) else None,
        "the collector to store every process's report",
    )


@dataclass
class Scenario:
    env: Env
    db: Path
    collector: Collector


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    root = tmp_path_factory.mktemp("report")
    env = build_env(root / "venv")
    collector = start_collector(root)
    try:
        feed(env, collector)
        yield Scenario(env, root / "popcon.sqlite3", collector)
    finally:
        collector.close()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "popularity_contest", *args],
        env=clean_env({"PYTHON_POPCONTEST_DISABLE": "1"}),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def report_document(*args: str) -> dict[str, Any]:
    done = cli("report", "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def report_json(*args: str) -> list[dict[str, object]]:
    """The rows without ``direct``: in this scenario it depends on the reporter's version
    (0 before it counted direct imports, the count since: every import is in ``-c`` code),
    so its own tests below check it; the direct scenario checks exact values."""
    rows: list[dict[str, object]] = report_document(*args)["rows"]
    for row in rows:
        direct = row.pop("direct")
        assert isinstance(row["count"], int)
        assert direct is None or (isinstance(direct, int) and 0 <= direct <= row["count"]), row
    return rows


def expected_rows(hub: str | None = None, minimum: int = 1) -> list[dict[str, object]]:
    packages, processes = truth(hub)
    ranked = sorted(packages.items(), key=lambda item: (-item[1], item[0]))
    return [
        {"package": p, "count": c, "share": round(c / processes, 6)}
        for p, c in ranked
        if c >= minimum
    ]


def test_report_counts_every_process_and_its_share(scenario: Scenario) -> None:
    assert report_json("--db", str(scenario.db)) == expected_rows()


def test_report_one_hub_shares_are_of_that_hubs_processes(scenario: Scenario) -> None:
    rows = report_json("--db", str(scenario.db), "--hub", "hub-b")
    assert rows == expected_rows("hub-b")
    assert rows[0]["share"] == 0.5


def test_report_by_namespace_gives_a_row_per_hub_and_package(scenario: Scenario) -> None:
    rows = report_json("--db", str(scenario.db), "--by", "hub")
    expected = [
        {"hub": hub, **row}
        for hub in sorted({h for h, _ in PROCESSES})
        for row in expected_rows(hub)
    ]
    assert rows == expected


def test_report_privacy_threshold_hides_rare_packages(scenario: Scenario) -> None:
    rows = report_json("--db", str(scenario.db), "--min-processes", "2")
    assert rows == expected_rows(minimum=2)
    assert "rare" not in {row["package"] for row in rows}


def test_report_limit_and_csv(scenario: Scenario) -> None:
    done = cli("report", "--db", str(scenario.db), "--format", "csv", "--limit", "2")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(r["package"], r["count"]) for r in rows] == [("alpha", "4"), ("beta", "2")]
    assert rows[0]["direct"] in {"0", "4"}  # see report_json
    assert float(rows[0]["share"]) == round(4 / 7, 6)
    # The denominator and the window travel with every row: no comment lines.
    assert {r["processes"] for r in rows} == {"7"}
    assert len({(r["window_start"], r["window_end"]) for r in rows}) == 1
    assert rows[0]["window_end"].endswith("Z")


def test_report_json_carries_window_and_processes(scenario: Scenario) -> None:
    document = report_document("--db", str(scenario.db), "--start", "2000-01-01", "--by", "hub")
    assert document["window"]["start"] == "2000-01-01T00:00:00Z"
    assert document["processes"] == len(PROCESSES)
    assert document["processes_per_hub"] == {"": 1, "hub-a": 4, "hub-b": 2}
    for row in document["rows"]:
        assert row["share"] == round(row["count"] / document["processes_per_hub"][row["hub"]], 6)


def test_report_limit_zero_does_not_claim_nothing_was_reported(scenario: Scenario) -> None:
    done = cli("report", "--db", str(scenario.db), "--limit", "0")
    assert done.returncode == 0, done.stderr
    assert "no package reported" not in done.stdout
    assert "4 package rows; --limit 0 shows none" in done.stdout
    done = cli("report", "--db", str(scenario.db), "--min-processes", "50")
    assert done.stdout.splitlines()[-1] == "no package reported by at least 50 processes"


def test_report_table_is_aligned_for_people(scenario: Scenario) -> None:
    done = cli("report", "--db", str(scenario.db))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "7 processes reported" in lines[0]
    assert lines[1].split() == ["package", "processes", "direct", "share"]
    alpha = lines[3].split()
    assert (alpha[0], alpha[1], alpha[3]) == ("alpha", "4", "57.1%")
    assert alpha[2] in {"0", "4"}  # see report_json
    # Right-aligned numbers: every count ends in the same column.
    ends = {line.index(line.split()[1]) + len(line.split()[1]) for line in lines[3:]}
    assert len(ends) == 1


def test_report_window_without_data_is_empty(scenario: Scenario) -> None:
    rows = report_json(
        "--db", str(scenario.db), "--start", "2001-01-01", "--end", "2001-02-01T00:00:00Z"
    )
    assert rows == []
    done = cli("report", "--db", str(scenario.db), "--start", "2001-01-01", "--end", "2001-02-01")
    assert done.stdout.splitlines()[-1] == "no package reported in this window"


@pytest.mark.parametrize(
    ("args", "message", "status"),
    [
        (("--db", "/nonexistent/popcon.sqlite3"), "no such store", 1),
        (("--since", "soon"), "not an age", 2),  # usage errors exit 2, as argparse's do
        (("--start", "2024-02-01", "--end", "2024-01-01"), "start must be before", 2),
        (("--prometheus", "http://127.0.0.1:1"), "127.0.0.1:1", 1),
    ],
)
def test_report_expected_failures_print_one_line(
    args: tuple[str, ...], message: str, status: int
) -> None:
    done = cli("report", *args)
    assert done.returncode == status
    assert done.stdout == ""
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


# --- unused ----------------------------------------------------------------------------------
def unused_document(scenario: Scenario, *args: str) -> dict[str, Any]:
    done = cli("unused", "--db", str(scenario.db), "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def unused_json(scenario: Scenario, *args: str) -> dict[str, dict[str, Any]]:
    rows = unused_document(scenario, *args)["distributions"]
    return {row["distribution"]: row for row in rows}


def test_unused_gives_a_verdict_for_each_distribution(scenario: Scenario) -> None:
    rows = unused_json(scenario, "--python", str(scenario.env.python))
    verdicts = {name: row["verdict"] for name, row in rows.items()}
    assert verdicts == {
        "alpha": "used",
        "beta": "used",
        "python-delta": "used",
        "rare": "used",
        "alpha-core": "dependency",  # required by alpha
        "alpha-base": "dependency",  # required by alpha-core: transitively
        "alpha-extra": "unused",  # only for alpha's optional extra
        "gamma": "unused",
        # No `install site` in this venv: running `tool` would not be observed.
        "tool": "commands",
        "tool-lib": "commands",  # required by tool
        "srv-ext": "infrastructure",  # enabled Jupyter server extension
        "lab-theme": "infrastructure",  # ships a JupyterLab extension
    }
    assert rows["lab-theme"]["packages"] == []
    assert rows["alpha"]["processes"] == 4
    assert rows["alpha"]["processes_exact"] is True
    assert rows["python-delta"]["packages"] == ["delta"]
    assert rows["alpha-core"]["required_by"] == ["alpha"]
    assert rows["gamma"]["processes"] == 0
    assert rows["gamma"]["manager"] == "pip"
    assert rows["lab-theme"]["manager"] == "envkit"  # INSTALLER says who
    assert rows["tool"]["reason"].startswith("provides commands (tool)")


def test_unused_requirements_lists_removal_candidates(scenario: Scenario) -> None:
    done = cli("unused", "--db", str(scenario.db), "--prefix", str(scenario.env.root))
    assert done.returncode == 0, done.stderr
    assert "2 unused, 2 removal candidates for pip" in done.stdout
    assert "activation here: none" in done.stdout
    assert "no activation file" in done.stderr
    done = cli(
        "unused",
        "--db",
        str(scenario.db),
        "--prefix",
        str(scenario.env.root),
        "--format",
        "requirements",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["alpha-extra==1.0", "gamma==1.0"]


def test_unused_per_hub_and_with_threshold(scenario: Scenario) -> None:
    rows = unused_json(scenario, "--python", str(scenario.env.python), "--hub", "hub-b")
    assert {n for n, r in rows.items() if r["verdict"] == "used"} == {"alpha", "beta"}
    assert rows["python-delta"]["verdict"] == "unused"
    document = unused_document(
        scenario, "--python", str(scenario.env.python), "--min-processes", "2"
    )
    rows = {row["distribution"]: row for row in document["distributions"]}
    # Imported by one process: below the threshold, hidden, and hidden is not unused.
    assert rows["rare"]["verdict"] == "hidden"
    assert rows["rare"]["processes"] is None
    assert document["min_processes"] == 2
    done = cli(
        "unused",
        "--db",
        str(scenario.db),
        "--python",
        str(scenario.env.python),
        "--min-processes",
        "2",
        "--format",
        "requirements",
    )
    assert done.stdout.splitlines() == ["alpha-extra==1.0", "gamma==1.0"]


def test_unused_bad_interpreter_prints_one_line(scenario: Scenario, tmp_path: Path) -> None:
    done = cli("unused", "--db", str(scenario.db), "--prefix", str(tmp_path))
    assert done.returncode == 1
    assert "no Python interpreter" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# --- Prometheus -----------------------------------------------------------------------------
def scraping(collector: Collector, workdir: Path) -> Iterator[str]:
    """A real Prometheus scraping ``collector``, once a scrape began after everything was
    stored (see ``feed``): its URL."""
    binary = require_system("prometheus", "prometheus")
    with PrometheusServer(binary, workdir, {"popularity-contest": collector.address}) as server:
        server.wait_for_scrape("popularity-contest")
        yield server.url


@pytest.fixture(scope="module")
def prometheus(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from scraping(scenario.collector, tmp_path_factory.mktemp("prometheus"))


def test_report_from_prometheus_equals_the_store(scenario: Scenario, prometheus: str) -> None:
    # 2h, not 1h: the store counts whole hourly buckets, so a report stored in the last
    # seconds of an hour must still fall inside the window.
    for args in ((), ("--by", "hub"), ("--hub", "hub-a"), ("--min-processes", "2")):
        from_prometheus = report_document("--prometheus", prometheus, "--since", "2h", *args)
        from_store = report_document("--db", str(scenario.db), "--since", "2h", *args)
        del from_prometheus["window"], from_store["window"]
        assert from_prometheus == from_store, args
        assert from_prometheus["rows"], args


def test_unused_from_prometheus(scenario: Scenario, prometheus: str) -> None:
    done = cli(
        "unused",
        "--prometheus",
        prometheus,
        "--since",
        "2h",
        "--python",
        str(scenario.env.python),
        "--format",
        "requirements",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["alpha-extra==1.0", "gamma==1.0"]


# --- Direct imports and distributions: a collector fed statsd lines as reporters send them ---
# (hub, counter, name, times): what the processes of two hubs reported. hub-a: 4 processes,
# hub-b: 2. Direct counts never exceed the package's; library_used only for setuptools on hub-a.
DIRECT_LINES: list[tuple[str, str, str, int]] = [
    ("hub-a", "processes_reported", "", 4),
    ("hub-a", "imported_package", "sklearn", 3),
    ("hub-a", "imported_package", "PIL", 2),
    ("hub-a", "imported_package", "setuptools", 2),
    ("hub-a", "imported_package", "pkg_resources", 1),
    ("hub-a", "imported_package", "mylocal", 1),
    ("hub-a", "directly_imported_package", "sklearn", 3),
    ("hub-a", "directly_imported_package", "setuptools", 1),
    ("hub-a", "directly_imported_package", "pkg_resources", 1),
    ("hub-a", "library_used", "setuptools", 3),
    ("hub-b", "processes_reported", "", 2),
    ("hub-b", "imported_package", "sklearn", 1),
    ("hub-b", "imported_package", "PIL", 2),
    ("hub-b", "directly_imported_package", "PIL", 1),
]


def direct_datagrams() -> list[bytes]:
    datagrams = []
    for hub, counter, name, times in DIRECT_LINES:
        metric = f"python_popcon.hub.{hub}.{counter}" + (f".{name}" if name else "")
        datagrams += [f"{metric}:1|c".encode()] * times
    return datagrams


@dataclass
class DirectScenario:
    python: Path
    db: Path
    collector: Collector


@pytest.fixture(scope="module")
def direct_scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DirectScenario]:
    root = tmp_path_factory.mktemp("direct")
    env = Env(root / "venv")
    env.add_dist("scikit-learn", {"sklearn/__init__.py": ""})
    env.add_dist("pillow", {"PIL/__init__.py": ""})
    env.add_dist("setuptools", {"setuptools/__init__.py": "", "pkg_resources/__init__.py": ""})
    collector = start_collector(root)
    try:
        collector.send(*direct_datagrams())
        wait_until(
            lambda: True if stored_processes(collector) == 6 else None,
            "the collector to store the direct scenario's lines",
        )
        # The last lines sent are stored too (one datagram each, stored in order of arrival).
        wait_until(
            lambda: (
                True
                if '"PIL"'
                in collector.read(
                    "/api/v1/packages?metric=python_popcon_directly_imported_package_total"
                )
                else None
            ),
            "the direct counts to be stored",
        )
        yield DirectScenario(env.python, root / "popcon.sqlite3", collector)
    finally:
        collector.close()


DIRECT_PACKAGES = [
    {"package": "sklearn", "count": 4, "direct": 3, "share": round(4 / 6, 6)},
    {"package": "PIL", "count": 4, "direct": 1, "share": round(4 / 6, 6)},
    {"package": "setuptools", "count": 2, "direct": 1, "share": round(2 / 6, 6)},
    {"package": "pkg_resources", "count": 1, "direct": 1, "share": round(1 / 6, 6)},
    {"package": "mylocal", "count": 1, "direct": 0, "share": round(1 / 6, 6)},
]


def test_report_shows_direct_counts_beside_processes(direct_scenario: DirectScenario) -> None:
    document = report_document("--db", str(direct_scenario.db))
    assert document["rows"] == DIRECT_PACKAGES
    assert document["rank"] == "processes"
    done = cli("report", "--db", str(direct_scenario.db))
    lines = done.stdout.splitlines()
    assert lines[1].split() == ["package", "processes", "direct", "share"]
    assert lines[3].split() == ["sklearn", "4", "3", "66.7%"]


def test_report_ranks_by_direct(direct_scenario: DirectScenario) -> None:
    rows = report_document("--db", str(direct_scenario.db), "--rank", "direct")["rows"]
    assert [(r["package"], r["direct"]) for r in rows] == [
        ("sklearn", 3),
        ("PIL", 1),  # 4 processes
        ("setuptools", 1),  # 2 processes
        ("pkg_resources", 1),  # 1 process
        ("mylocal", 0),
    ]
    per_hub = report_document("--db", str(direct_scenario.db), "--rank", "direct", "--by", "hub")[
        "rows"
    ]
    assert [(r["hub"], r["package"], r["count"], r["direct"]) for r in per_hub] == [
        ("hub-a", "sklearn", 3, 3),
        ("hub-a", "setuptools", 2, 1),
        ("hub-a", "pkg_resources", 1, 1),
        ("hub-a", "PIL", 2, 0),
        ("hub-a", "mylocal", 1, 0),
        ("hub-b", "PIL", 2, 1),
        ("hub-b", "sklearn", 1, 0),
    ]


def test_report_threshold_masks_direct_counts_below_it(direct_scenario: DirectScenario) -> None:
    rows = report_document("--db", str(direct_scenario.db), "--min-processes", "2")["rows"]
    assert [(r["package"], r["count"], r["direct"]) for r in rows] == [
        ("sklearn", 4, 3),
        ("PIL", 4, None),  # 1 process imported it itself: masked
        ("setuptools", 2, None),
    ]
    done = cli("report", "--db", str(direct_scenario.db), "--min-processes", "2")
    assert done.stdout.splitlines()[4].split() == ["PIL", "4", "<2", "66.7%"]
    assert "<2: direct count below the privacy threshold" in done.stdout


def test_report_by_distribution_groups_import_names(direct_scenario: DirectScenario) -> None:
    document = report_document(
        "--db",
        str(direct_scenario.db),
        "--by",
        "distribution",
        "--python",
        str(direct_scenario.python),
    )
    assert document["by"] == ["distribution"]
    assert document["unattributed"] == ["mylocal"]
    rows = [
        (r["distribution"], r["count"], r["count_exact"], r["direct"], r["direct_exact"])
        for r in document["rows"]
    ]
    assert rows == [
        ("scikit-learn", 4, True, 3, True),
        ("pillow", 4, True, 1, True),
        ("setuptools", 3, True, 1, False),  # library_used: exact; direct: two names, a lower bound
        ("mylocal", 1, True, 0, True),
    ]
    assert document["rows"][2]["packages"] == ["pkg_resources", "setuptools"] or document["rows"][
        2
    ]["packages"] == ["setuptools", "pkg_resources"]
    assert document["rows"][3]["provided"] is False
    # --prefix names the same environment; the table marks what stays an import name.
    done = cli(
        "report",
        "--db",
        str(direct_scenario.db),
        "--by",
        "distribution",
        "--prefix",
        str(direct_scenario.python.parent.parent),
        "--rank",
        "direct",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].split() == ["distribution", "processes", "direct", "share", "packages"]
    assert lines[3].split() == ["scikit-learn", "4", "3", "66.7%", "sklearn"]
    assert lines[5].split()[:3] == ["setuptools", "3", ">=1"]
    assert lines[6].split() == ["mylocal*", "1", "0", "16.7%", "-"]
    assert any(line.startswith("* an import name that no single distribution") for line in lines)


def test_report_by_distribution_and_namespace(direct_scenario: DirectScenario) -> None:
    rows = report_document(
        "--db",
        str(direct_scenario.db),
        "--by",
        "distribution",
        "--by",
        "hub",
        "--python",
        str(direct_scenario.python),
    )["rows"]
    assert [(r["hub"], r["distribution"], r["count"], r["direct"]) for r in rows] == [
        ("hub-a", "scikit-learn", 3, 3),  # ties: the larger direct count first
        ("hub-a", "setuptools", 3, 1),
        ("hub-a", "pillow", 2, 0),
        ("hub-a", "mylocal", 1, 0),
        ("hub-b", "pillow", 2, 1),
        ("hub-b", "scikit-learn", 1, 0),
    ]


def test_report_by_distribution_defaults_to_this_interpreters_environment(
    direct_scenario: DirectScenario,
) -> None:
    document = report_document("--db", str(direct_scenario.db), "--by", "distribution")
    assert document["python"] == sys.executable
    names = {name for row in document["rows"] for name in row["packages"]}
    # Every import name is somewhere: in a distribution's row or left as it is.
    assert {"sklearn", "PIL", "setuptools", "pkg_resources", "mylocal"} <= names
    assert "mylocal" in document["unattributed"]


def test_report_environment_flags_need_by_distribution(direct_scenario: DirectScenario) -> None:
    done = cli("report", "--db", str(direct_scenario.db), "--python", sys.executable)
    assert done.returncode == 2
    assert "--by distribution" in done.stderr


@pytest.fixture(scope="module")
def direct_prometheus(
    direct_scenario: DirectScenario, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    yield from scraping(direct_scenario.collector, tmp_path_factory.mktemp("prometheus-direct"))


def test_direct_counts_from_prometheus_equal_the_store(
    direct_scenario: DirectScenario, direct_prometheus: str
) -> None:
    python = str(direct_scenario.python)
    for args in (
        (),
        ("--rank", "direct", "--by", "hub"),
        ("--min-processes", "2"),
        ("--by", "distribution", "--python", python),  # library_used through Prometheus too
    ):
        from_prometheus = report_document("--prometheus", direct_prometheus, "--since", "2h", *args)
        from_store = report_document("--db", str(direct_scenario.db), "--since", "2h", *args)
        del from_prometheus["window"], from_store["window"]
        assert from_prometheus == from_store, args
    assert from_store["rows"][2]["count_exact"] is True  # setuptools' library_used count


def test_an_unknown_hub_is_answered_with_the_hubs_that_reported(scenario: Scenario) -> None:
    done = cli("report", "--db", str(scenario.db), "--hub", "hub-z")
    assert done.returncode == 2
    assert "no hub 'hub-z' reported in this window; hubs that did:" in done.stderr
    assert "'hub-a'" in done.stderr
    assert "'hub-b'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_without_a_store_the_message_names_the_flag_and_the_variable(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "popularity_contest", "report"],
        env=clean_env({"PYTHON_POPCONTEST_DISABLE": "1", "HOME": str(tmp_path)}),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "no such store" in done.stderr
    assert "--db PATH" in done.stderr
    assert "PYTHON_POPCONTEST_SERVE_DB" in done.stderr
    # The variable `serve` reads names the store for report too.
    store = tmp_path / "elsewhere.sqlite3"
    done = subprocess.run(
        [sys.executable, "-m", "popularity_contest", "report"],
        env=clean_env(
            {
                "PYTHON_POPCONTEST_DISABLE": "1",
                "HOME": str(tmp_path),
                "PYTHON_POPCONTEST_SERVE_DB": str(store),
            }
        ),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert str(store) in done.stderr
