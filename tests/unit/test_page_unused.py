"""The page's share of issue 10: hidden is not unused, and the per-period chart's axis."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from popularity_contest.collector.store import (
    IMPORTED_PACKAGE,
    PROCESSES_REPORTED,
    Store,
    series_key,
)
from popularity_contest.collector.web import page
from tests.envkit import Env

NOW = 1_700_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "popcon.sqlite3")
    s.add(
        {
            series_key(IMPORTED_PACKAGE, {"namespace": "hub", "package": "common"}): 5,
            series_key(IMPORTED_PACKAGE, {"namespace": "hub", "package": "rare"}): 1,
            series_key(PROCESSES_REPORTED, {"namespace": "hub"}): 6,
        },
        at=NOW - 3600,
    )
    yield s
    s.close()


def test_below_the_threshold_the_page_says_hidden_not_unused(store: Store, tmp_path: Path) -> None:
    env = Env(tmp_path / "venv")
    for name in ("common", "rare", "idle"):
        info = env.add_dist(name, {f"{name}/__init__.py": ""})
        (info / "INSTALLER").write_text("pip\n")
    text = page.render(
        store, {"window": "7d"}, environment=str(env.python), min_processes=2, now=NOW
    ).decode()
    found = re.findall(r"<tr class='(\w+)'><td>([a-z]+)</td>", text)
    verdicts = {name: verdict for verdict, name in found}
    assert verdicts == {"common": "used", "rare": "hidden", "idle": "unused"}
    assert [verdict for verdict, _ in found] == ["unused", "hidden", "used"]  # candidates first
    assert "1 removal candidates" in text
    assert "Hidden is not unused" in text
    assert "<th>processes</th><th>managed by</th>" in text
    # The hidden row does not show its count.
    rare = re.search(r"<tr class='hidden'>(.*?)</tr>", text)
    assert rare is not None
    assert "<td class='n'>-</td>" in rare.group(1)


def test_per_period_chart_does_not_stack_packages_on_a_processes_axis(store: Store) -> None:
    text = page.render(store, {"window": "7d"}, now=NOW).decode()
    script = text[text.index('Plotly.newPlot("chart-periods"') :]
    script = script[: script.index(");")]
    assert '"barmode":"stack"' not in script
    assert '"processes that imported it"' in script
    assert '"type":"scatter"' in script


def test_an_environment_that_cannot_be_inspected_is_said_on_the_page(
    store: Store, tmp_path: Path
) -> None:
    missing = str(tmp_path / "no-such-python")
    for now in (NOW, NOW + 1):  # the second answer comes from the cache
        context = page.context(store, {"window": "7d"}, environment=missing, now=now)
        problem = context["unused_problem"]
        assert isinstance(problem, str)
        assert problem.startswith(missing + ": ")
        assert context["verdicts"] == []
    text = page.render(store, {"window": "7d"}, environment=missing, now=NOW).decode()
    assert f"<p class='note'>{missing}: " in text
    assert "<table id='unused'>" not in text
