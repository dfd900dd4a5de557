"""The archive's pure pieces and the store's archived days (see the integration test too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from popularity_contest.answers import archive
from popularity_contest.answers.sources import SourceError
from popularity_contest.collector.store import DAY, Store, StoreError, series_key

KEY = series_key("python_popcon_imported_package_total", {"namespace": "", "cluster": "a"})


def test_a_day_is_written_once_with_its_checkpoint(tmp_path: Path) -> None:
    with Store.open(tmp_path / "db") as store:
        assert store.archive_checkpoint("a") is None
        store.add_archived_day("a", 10 * DAY, {KEY: 3.0})
        assert store.archive_checkpoint("a") == 10 * DAY
        with pytest.raises(StoreError, match="already archived"):
            store.add_archived_day("a", 10 * DAY, {KEY: 3.0})
        with pytest.raises(StoreError, match="already archived"):
            store.add_archived_day("a", 9 * DAY, {KEY: 1.0})
        store.add_archived_day("b", 9 * DAY, {})  # another source has its own checkpoint
        (total,) = store.totals(0, 20 * DAY, metric=None)
        assert total.value == 3.0
        with pytest.raises(ValueError, match="start of a UTC day"):
            store.add_archived_day("a", 11 * DAY + 5, {})


@pytest.mark.parametrize(
    ("first", "last", "chunks"),
    [
        (0, 0, [(0, 0)]),
        (0, 30 * DAY, [(0, 30 * DAY)]),
        (0, 31 * DAY, [(0, 30 * DAY), (31 * DAY, 31 * DAY)]),
        (5 * DAY, 4 * DAY, []),
    ],
)
def test_days_are_asked_for_in_chunks_prometheus_accepts(
    first: int, last: int, chunks: list[tuple[int, int]]
) -> None:
    assert list(archive._chunks(first, last)) == chunks


def test_flags_are_parsed_or_refused_by_name() -> None:
    assert archive.parse_source("east=http://p:9090") == ("east", "http://p:9090")
    assert archive.parse_header("X-Scope-OrgID: hubs") == ("X-Scope-OrgID", "hubs")
    with pytest.raises(SourceError, match="Name: value"):
        archive.parse_header("X: a\r\nInjected: yes")
    with pytest.raises(SourceError, match="letters, digits"):
        archive.PrometheusAPI("east cluster", "http://p")


def test_the_daily_expression_is_the_dashboards_over_one_day() -> None:
    text = archive.daily_expression("m_total", ("namespace", "package"))
    assert text.startswith("sum by (namespace, package) (")
    assert "[1d]" in text
    assert "$" not in text  # every Grafana variable substituted
