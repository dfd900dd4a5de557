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
    status, content_type, body = reply
    assert status == 200
    assert content_type == "text/html; charset=utf-8"
    return body.decode()


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
    status, content_type, body = page.respond(store, "/static/plotly.min.js") or (0, "", b"")
    assert status == 200
    assert content_type.startswith("application/javascript")
    assert b"plotly.js v" in body[:500]


def test_unknown_paths_are_left_to_the_api(store: Store) -> None:
    assert page.respond(store, "/metrics") is None
    assert page.respond(store, "/api/v1/packages") is None


def test_empty_store_says_so(tmp_path: Path) -> None:
    with Store.open(tmp_path / "empty.sqlite3") as empty:
        text = html(empty)
    assert "Nothing reported in this window yet" in text
    assert "Plotly.newPlot" not in text


def test_bad_environment_is_reported_on_the_page(store: Store, tmp_path: Path) -> None:
    text = html(store, environment=str(tmp_path / "no-python"))
    assert "Installed in" in text
    assert "no-python" in text


def test_hook_serves_under_a_jupyterhub_service_prefix(store: Store) -> None:
    serve = page.hook(None, None, prefix="/services/popcon/")
    reply = serve(store, "/services/popcon/?window=7d")
    assert reply is not None
    assert reply[0] == 200
    assert b"processes reported" in reply[2]
    script = serve(store, "/services/popcon/static/plotly.min.js")
    assert script is not None
    assert script[0] == 200
    assert serve(store, "/services/popcon/metrics") is None
    assert page.hook(None, None, prefix="")(store, "/") is not None
