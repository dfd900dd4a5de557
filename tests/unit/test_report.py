"""Pure pieces of ``report`` and ``unused``: windows, ranking, shares, threshold, verdicts."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from popularity_contest.answers import sources
from popularity_contest.answers.formats import table
from popularity_contest.answers.promql import promql
from popularity_contest.answers.ranking import Row, top_packages
from popularity_contest.answers.window import Window, parse_age, parse_time, window
from popularity_contest.commands.report import render

PACKAGES = {
    ("hub-a", "numpy"): 3.0,
    ("hub-a", "yaml"): 1.0,
    ("hub-b", "numpy"): 1.0,
    ("hub-b", "pandas"): 2.0,
    ("", "numpy"): 1.0,
}
PROCESSES = {"hub-a": 4.0, "hub-b": 2.0, "": 2.0}
# Processes whose own code imported each package (never above PACKAGES).
DIRECT = {
    ("hub-a", "numpy"): 1.0,
    ("hub-a", "yaml"): 1.0,
    ("hub-b", "pandas"): 2.0,
    ("", "numpy"): 1.0,
}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45s", 45), ("90m", 5400), ("12h", 43200), ("30d", 2592000), ("8w", 4838400), ("1.5h", 5400)],
)
def test_parse_age(text: str, seconds: float) -> None:
    assert parse_age(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "-3d", "0d", "3 days", "1e3s"])
def test_parse_age_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not an age"):
        parse_age(text)


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from("smhdw"))
def test_parse_age_is_number_times_unit(number: int, unit: str) -> None:
    factor = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    assert parse_age(f"{number}{unit}") == number * factor


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)))
def test_parse_time_naive_is_utc_and_z_is_accepted(moment: datetime) -> None:
    moment = moment.replace(microsecond=0)
    expected = moment.replace(tzinfo=timezone.utc).timestamp()
    assert parse_time(moment.isoformat()) == expected
    assert parse_time(moment.isoformat() + "Z") == expected


def test_window_start_wins_over_since_and_end_defaults_to_now() -> None:
    assert window("30d", None, None, now=1_000_000_000) == Window(1_000_000_000 - 2592000, 1e9)
    span = window("30d", "2024-01-01", "2024-01-02T12:00:00+02:00")
    assert span.start == parse_time("2024-01-01T00:00:00Z")
    assert span.end == parse_time("2024-01-02T10:00:00Z")
    assert span.seconds == 122400
    with pytest.raises(ValueError, match="before its end"):
        window(None, "2024-01-02", "2024-01-01")


def test_top_packages_in_total_shares_all_processes() -> None:
    rows = top_packages(PACKAGES, PROCESSES)
    assert [(r.package, r.count, r.share) for r in rows] == [
        ("numpy", 5.0, 5 / 8),
        ("pandas", 2.0, 2 / 8),
        ("yaml", 1.0, 1 / 8),
    ]
    assert all(r.namespace is None for r in rows)


def test_top_packages_by_namespace_shares_each_hubs_processes() -> None:
    rows = top_packages(PACKAGES, PROCESSES, by_namespace=True)
    assert [(r.namespace, r.package, r.count, r.share) for r in rows] == [
        ("", "numpy", 1.0, 0.5),
        ("hub-a", "numpy", 3.0, 0.75),
        ("hub-a", "yaml", 1.0, 0.25),
        ("hub-b", "pandas", 2.0, 1.0),
        ("hub-b", "numpy", 1.0, 0.5),
    ]


@pytest.mark.parametrize(
    ("by_namespace", "minimum", "expected"),
    [
        (False, 2, {(None, "numpy"), (None, "pandas")}),
        (False, 6, set()),
        (True, 2, {("hub-a", "numpy"), ("hub-b", "pandas")}),
        (True, 1, {(ns, p) for ns, p in PACKAGES}),
    ],
)
def test_threshold_hides_each_row_below_it(
    by_namespace: bool, minimum: int, expected: set[tuple[str | None, str]]
) -> None:
    rows = top_packages(PACKAGES, PROCESSES, by_namespace=by_namespace, min_processes=minimum)
    assert {(r.namespace, r.package) for r in rows} == expected
    assert all(r.count >= minimum for r in rows)


def test_limit_applies_per_hub() -> None:
    rows = top_packages(PACKAGES, PROCESSES, by_namespace=True, limit=1)
    assert [(r.namespace, r.package) for r in rows] == [
        ("", "numpy"),
        ("hub-a", "numpy"),
        ("hub-b", "pandas"),
    ]


def test_share_is_none_without_processes_and_zero_counts_are_dropped() -> None:
    rows = top_packages({("", "a"): 2.0, ("", "b"): 0.0}, {})
    assert rows == [Row("a", 2.0, None, None)]


SPAN = Window(0, 86400)


def test_render_json_carries_window_and_denominator() -> None:
    rows = top_packages(PACKAGES, PROCESSES, by_namespace=True)
    document = json.loads(
        render(rows, "json", by_namespace=True, span=SPAN, processes=PROCESSES, min_processes=1)
    )
    assert document["window"] == {"start": "1970-01-01T00:00:00Z", "end": "1970-01-02T00:00:00Z"}
    assert document["processes"] == 8
    assert document["processes_per_hub"] == {"": 2, "hub-a": 4, "hub-b": 2}
    assert document["min_processes"] == 1
    assert document["rows"][1] == {
        "hub": "hub-a",
        "package": "numpy",
        "count": 3,
        "direct": 0,
        "share": 0.75,
    }
    assert document["rank"] == "processes"
    flat = json.loads(
        render(
            top_packages(PACKAGES, PROCESSES), "json", by_namespace=False, span=SPAN, processes={}
        )
    )
    assert set(flat["rows"][0]) == {"package", "count", "direct", "share"}
    assert flat["processes"] == 0


def test_render_csv_carries_window_and_each_rows_denominator() -> None:
    rows = top_packages(PACKAGES, PROCESSES, by_namespace=True)
    text = render(rows, "csv", by_namespace=True, span=SPAN, processes=PROCESSES)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert parsed[0] == {
        "hub": "",
        "package": "numpy",
        "count": "1",
        "direct": "0",
        "share": "0.5",
        "processes": "2",
        "window_start": "1970-01-01T00:00:00Z",
        "window_end": "1970-01-02T00:00:00Z",
    }
    hub_a = [r for r in parsed if r["hub"] == "hub-a"]
    assert {r["processes"] for r in hub_a} == {"4"}
    # In total, every row's share is of all processes.
    total = render(
        top_packages(PACKAGES, PROCESSES), "csv", by_namespace=False, span=SPAN, processes=PROCESSES
    )
    for row in csv.DictReader(io.StringIO(total)):
        assert row["processes"] == "8"
        assert float(row["share"]) == round(int(row["count"]) / 8, 6)
    assert not any(line.startswith("#") for line in total.splitlines())


def test_render_table_says_why_no_row_is_shown() -> None:
    rows = top_packages(PACKAGES, PROCESSES, limit=0)
    text = render(
        rows, "table", by_namespace=False, span=SPAN, processes=PROCESSES, shown_before_limit=3
    )
    assert "no package reported" not in text
    assert "3 package rows; --limit 0 shows none" in text
    limited = render(
        top_packages(PACKAGES, PROCESSES, limit=1),
        "table",
        by_namespace=False,
        span=SPAN,
        processes=PROCESSES,
        shown_before_limit=3,
    )
    assert limited.splitlines()[-1] == "(2 more rows; raise --limit to see them)"
    hidden = render(
        [], "table", by_namespace=False, span=SPAN, processes=PROCESSES, min_processes=9
    )
    assert hidden.splitlines()[-1] == "no package reported by at least 9 processes"
    empty = render([], "table", by_namespace=False, span=SPAN, processes={})
    assert empty.splitlines()[-1] == "no package reported in this window"


def test_render_table_names_the_no_hub_namespace() -> None:
    rows = top_packages(PACKAGES, PROCESSES, by_namespace=True)
    text = render(rows, "table", by_namespace=True, span=SPAN, processes=PROCESSES)
    assert "1970-01-01T00:00:00Z .. 1970-01-02T00:00:00Z: 8 processes reported" in text
    assert text.splitlines()[1].split() == ["hub", "package", "processes", "direct", "share"]
    assert text.splitlines()[3].split() == ["(no", "hub)", "numpy", "1", "0", "50.0%"]


def test_table_aligns_columns() -> None:
    text = table(["a", "n"], [["long-name", "1"], ["x", "100"]], {1})
    assert text.splitlines() == [
        "a            n",
        "---------  ---",
        "long-name    1",
        "x          100",
    ]


def test_promql_substitutes_grafana_variables() -> None:
    expr = promql("packages", Window(0, 3600), "hub-a")
    assert '{namespace=~"hub\\\\-a"}' in expr
    assert "[3600s]" in expr
    assert "offset 3600s" in expr
    assert "$" not in expr
    everything = promql("processes", Window(0, 60), None)
    assert '{namespace=~".*"}' in everything
    assert everything.startswith("sum by (namespace) (")


def test_prometheus_url_must_be_http() -> None:
    with pytest.raises(sources.SourceError, match="http"):
        sources.PrometheusSource("127.0.0.1:9090")
