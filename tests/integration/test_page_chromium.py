"""The collector's page in headless Chromium: the numbers, a rendered chart, a screenshot.

A real collector (``serve --environment`` the test venv's Python, privacy threshold 2) is
fed by real reporter processes; Chromium (Debian ``chromium``) loads ``/``, runs plotly.js
served by the collector itself, and dumps the DOM it built. The screenshot is kept under
``test-artifacts/`` for people to look at.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.collectorkit import Collector
from tests.conftest import require_system
from tests.envkit import REPO
from tests.integration.test_report_cli import build_env, feed, start_collector

ARTIFACTS = REPO / "test-artifacts"


@dataclass
class Served:
    collector: Collector
    chromium: str
    profile: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    chromium = require_system("chromium", "chromium")
    root = tmp_path_factory.mktemp("page")
    env = build_env(root / "venv")
    collector = start_collector(
        root,
        "--environment",
        str(env.python),
        env={"PYTHON_POPCONTEST_SERVE_MIN_PROCESSES": "2"},
    )
    try:
        feed(env, collector)
        yield Served(collector, chromium, root / "chromium-profile")
    finally:
        collector.close()


def browse(served: Served, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            served.chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={served.profile}",
            "--window-size=1280,1600",
            # Let scripts finish (plotly draws after load) before dumping or capturing.
            "--virtual-time-budget=10000",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def value(dom: str, ident: str) -> str:
    match = re.search(rf'id="{ident}" class="value">([^<]*)<', dom)
    assert match is not None, f"no big number {ident!r} in the page"
    return match.group(1)


@pytest.fixture(scope="module")
def dom(served: Served) -> str:
    done = browse(served, served.collector.url + "/?window=7d&aggregate=day", "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_page_shows_the_big_numbers(dom: str) -> None:
    # 7 processes; alpha, beta and delta reach the threshold of 2, rare (1) does not;
    # hub-a, hub-b and the machine without a hub reported.
    assert (value(dom, "processes"), value(dom, "packages"), value(dom, "hubs")) == (
        "7",
        "3",
        "3",
    )


def test_plotly_served_by_the_collector_drew_the_charts(dom: str) -> None:
    assert 'src="static/plotly.min.js"' in dom
    assert not re.search(r'<script[^>]+src="https?:', dom)
    charts = ("chart-top", "chart-periods", "chart-hubs")
    starts = [dom.index(f'id="{chart}"') for chart in charts]
    for chart, start, end in zip(charts, starts, [*starts[1:], len(dom)], strict=True):
        # plotly replaced the empty <div> with its SVG drawing.
        assert 'class="main-svg"' in dom[start:end], chart
    # One bar per package in the top chart (alpha, beta, delta).
    assert dom[starts[0] : starts[1]].count('class="point"') == 3


def test_threshold_hides_rare_packages_on_the_page(dom: str) -> None:
    # Only the environment's listing may name it (as a distribution, counted 0).
    before_listing = dom[: dom.index('id="unused"')]
    assert "alpha" in before_listing
    assert "rare" not in before_listing
    assert "fewer than 2 processes" in dom


def test_unused_list_for_the_configured_environment(dom: str) -> None:
    rows = re.findall(r'<tr class="(\w+)"><td>([a-z-]+)</td>', dom)
    verdicts = {name: verdict for verdict, name in rows}
    assert verdicts["gamma"] == "unused"
    assert verdicts["alpha"] == "used"
    assert verdicts["alpha-core"] == "dependency"
    assert verdicts["tool"] == "commands"  # no `install site` in this venv
    # Below the threshold, rare is hidden: kept, never a removal candidate.
    assert verdicts["rare"] == "hidden"
    assert "2 removal candidates" in dom
    assert "hidden is not unused" in dom


def test_screenshot_is_kept_as_an_artifact(served: Served) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "page.png"
    shot.unlink(missing_ok=True)
    done = browse(served, served.collector.url + "/?window=30d", f"--screenshot={shot}")
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 1600)
    assert len(data) > 30_000  # a blank page compresses to a few kB


def test_json_api_applies_the_threshold_too(served: Served) -> None:
    get = served.collector.read
    # The API's rows are per hub and package: only hub-a's alpha (3) reaches 2.
    totals = json.loads(get("/api/v1/packages"))["totals"]
    assert [(r["namespace"], r["package"], r["count"]) for r in totals] == [("hub-a", "alpha", 3)]
    counts = json.loads(get("/api/v1/popularity?aggregate=month"))["counts"]
    assert {(r["namespace"], r["package"]) for r in counts} == {("hub-a", "alpha")}
    # Process counts name no package: not thresholded (hub-b's no-hub sibling has 1).
    processes = json.loads(get("/api/v1/packages?metric=processes_reported"))["totals"]
    assert sum(row["count"] for row in processes) == 7
