"""The page's HTML, rendered from a real SQLite store (no server, no browser)."""

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
from popularity_contest.names import DIRECTLY_IMPORTED_PACKAGE

NOW = 1_700_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "popcon.sqlite3")
    s.add(
        {
            series_key(IMPORTED_PACKAGE, {"namespace": "hub-a", "package": "numpy"}): 5,
            series_key(IMPORTED_PACKAGE, {"namespace": "hub-a", "package": "rare"}): 1,
            series_key(IMPORTED_PACKAGE, {"namespace": "hub-b", "package": "numpy"}): 2,
            series_key(IMPORTED_PACKAGE, {"namespace": "<b>x</b>", "package": "pandas"}): 3,
            series_key(PROCESSES_REPORTED, {"namespace": "hub-a"}): 6,
            series_key(PROCESSES_REPORTED, {"namespace": "hub-b"}): 2,
            series_key(PROCESSES_REPORTED, {"namespace": "<b>x</b>"}): 3,
        },
        at=NOW - 3600,
    )
    # Outside the 7-day window, inside the 30-day one.
    s.add({series_key(PROCESSES_REPORTED, {"namespace": "hub-b"}): 10}, at=NOW - 10 * 86400)
    yield s
    s.close()


def html(store: Store, target: str = "/", **options: object) -> str:
    reply = page.respond(store, target, clock=lambda: NOW, **options)  # type: ignore[arg-type]
    assert reply is not None
    assert reply.status == 200
    assert reply.content_type == "text/html; charset=utf-8"
    return reply.body.decode()


def number(text: str, ident: str) -> str:
    match = re.search(rf"id='{ident}' class='value'>([^<]*)<", text)
    assert match is not None, ident
    return match.group(1)


def test_big_numbers_follow_the_window(store: Store) -> None:
    text = html(store, "/?window=30d")
    assert (number(text, "processes"), number(text, "packages"), number(text, "hubs")) == (
        "21",
        "3",
        "3",
    )
    text = html(store, "/?window=7d")
    assert number(text, "processes") == "11"


def test_threshold_hides_rare_packages_everywhere(store: Store) -> None:
    assert "rare" in html(store)
    text = html(store, min_processes=2)
    assert "rare" not in text
    assert number(text, "packages") == "2"
    assert "fewer than 2 processes" in text


def test_one_hub(store: Store) -> None:
    text = html(store, "/?hub=hub-b&window=7d&aggregate=week")
    assert number(text, "processes") == "2"
    assert number(text, "hubs") == "1"
    assert "pandas" not in text
    assert "<option selected>week</option>" in text


def test_hostile_label_values_are_escaped(store: Store) -> None:
    text = html(store)
    assert "<b>x</b>" not in text
    assert "&lt;b&gt;x&lt;/b&gt;" in text


def test_charts_use_the_local_plotly_and_no_cdn(store: Store) -> None:
    text = html(store)
    assert "<script src='static/plotly.min.js'></script>" in text
    assert text.count("Plotly.newPlot(") == 3
    assert not re.search(r"<script[^>]+src=['\"]https?:", text)
    script = page.plotly_js()  # what the server's StaticFileHandler serves
    assert script is not None
    assert b"plotly.js v" in script[:500]


def test_unknown_paths_are_left_to_the_api(store: Store) -> None:
    assert page.respond(store, "/metrics") is None
    assert page.respond(store, "/api/v1/packages") is None


def test_empty_store_says_so(tmp_path: Path) -> None:
    with Store.open(tmp_path / "empty.sqlite3") as empty:
        text = html(empty)
    assert "Nothing reported in this window yet" in text
    # ... and what to do next.
    assert "popularity-contest install ipython" in text
    assert "PYTHON_POPCONTEST_STATSD_PORT" in text
    assert "popularity-contest check --expect-collector" in text
    assert "Plotly.newPlot" not in text


def test_bad_environment_is_reported_on_the_page(store: Store, tmp_path: Path) -> None:
    text = html(store, environment=str(tmp_path / "no-python"))
    assert "Installed in" in text
    assert "no-python" in text


def test_chart_labels_show_markup_as_text_never_as_links(tmp_path: Path) -> None:
    # plotly renders <a href>, <span style> and entities in labels: they must arrive escaped.
    hostile = "<a href='https://evil.example/'>numpy</a>"
    with Store.open(tmp_path / "h.sqlite3") as hostile_store:
        hostile_store.add(
            {
                series_key(
                    IMPORTED_PACKAGE, {"namespace": "<span style=x>", "package": hostile}
                ): 4,
                series_key(PROCESSES_REPORTED, {"namespace": "<span style=x>"}): 4,
            },
            at=NOW - 3600,
        )
        values = page.context(hostile_store, {}, now=NOW)
        text = html(hostile_store)
    figures = dict(values["figures"])  # type: ignore[call-overload]
    assert figures["chart-top"]["data"][0]["y"] == [
        "&lt;a href='https://evil.example/'&gt;numpy&lt;/a&gt;"
    ]
    assert figures["chart-hubs"]["data"][0]["name"] == "&lt;span style=x&gt;"
    assert "<a href='https://evil.example/'" not in text
    assert "evil.example" in text  # shown, as text
    script = text[text.index("Plotly.newPlot") :]
    assert "<" not in script.split("</script>")[0].replace("<\\/", "")


def test_the_page_warns_when_the_collector_says_so(store: Store) -> None:
    text = html(store, warnings=["series cap reached: <prune>"])
    assert "<p class='warning'>series cap reached: &lt;prune&gt;</p>" in text


def test_the_package_table_is_bounded(tmp_path: Path) -> None:
    with Store.open(tmp_path / "many.sqlite3") as many:
        many.add(
            {
                series_key(IMPORTED_PACKAGE, {"namespace": "", "package": f"p{i}"}): 1
                for i in range(page.MAX_TABLE_ROWS + 7)
            },
            at=NOW - 3600,
        )
        text = html(many)
    assert text.count("<tr><td>p") == page.MAX_TABLE_ROWS
    assert "7 more packages not listed" in text


def test_the_package_table_shows_direct_imports_masked_below_the_threshold(
    store: Store,
) -> None:
    store.add(
        {
            series_key(DIRECTLY_IMPORTED_PACKAGE, {"namespace": "hub-a", "package": "numpy"}): 4,
            series_key(
                DIRECTLY_IMPORTED_PACKAGE, {"namespace": "<b>x</b>", "package": "pandas"}
            ): 1,
        },
        at=NOW - 3600,
    )
    rows = {
        cells[0]: cells[1:]
        for cells in re.findall(
            r"<tr><td>([^<]*)</td><td class='n'>([^<]*)</td><td class='n'>([^<]*)</td>",
            html(store).split("<table id='packages'>")[1],
        )
    }
    assert rows["numpy"] == ("7", "4")  # processes, direct
    assert rows["pandas"] == ("3", "1")
    assert rows["rare"] == ("1", "0")
    masked = {
        cells[0]: cells[1:]
        for cells in re.findall(
            r"<tr><td>([^<]*)</td><td class='n'>([^<]*)</td><td class='n'>([^<]*)</td>",
            html(store, min_processes=3).split("<table id='packages'>")[1],
        )
    }
    assert masked["numpy"] == ("7", "4")
    assert masked["pandas"] == ("3", "&lt;3")  # a direct count below the threshold is masked


def test_archived_clusters_are_shown_one_at_a_time_or_together(tmp_path: Path) -> None:
    with Store.open(tmp_path / "clusters.sqlite3") as store:
        for cluster, numpy, processes in (("east", 4, 5), ("west", 1, 2)):
            store.add(
                {
                    series_key(
                        IMPORTED_PACKAGE,
                        {"namespace": "hub", "package": "numpy", "cluster": cluster},
                    ): numpy,
                    series_key(
                        PROCESSES_REPORTED, {"namespace": "hub", "cluster": cluster}
                    ): processes,
                },
                at=NOW - 3600,
            )
        together = html(store)
        assert "<select name='cluster'>" in together
        assert number(together, "processes") == "7"
        east = html(store, "/?cluster=east")
        assert number(east, "processes") == "5"
        assert ", cluster <b>east</b>" in east
        assert number(html(store, "/?cluster=west"), "processes") == "2"
        # An unknown cluster shows them all rather than nothing.
        assert number(html(store, "/?cluster=nowhere"), "processes") == "7"
    with Store.open(tmp_path / "one.sqlite3") as single:
        single.add({series_key(PROCESSES_REPORTED, {"namespace": ""}): 1}, at=NOW - 3600)
        assert "<select name='cluster'>" not in html(single)  # nothing to choose from
