"""Every API question is bounded: times, numbers, periods x series, pages; answers shared."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from popularity_contest.collector.exposition import Health, PopconCollector, registry_for
from popularity_contest.collector.store import IMPORTED_PACKAGE, Store, series_key
from popularity_contest.collector.web.api import MAX_CELLS, Api, Response
from popularity_contest.collector.web.cache import AnswerCache

NOW = 1_714_557_600.0  # 2024-05-01T10:00:00Z


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    store = Store.open(tmp_path / "s.db")
    store.add(
        {
            series_key(IMPORTED_PACKAGE, {"namespace": "", "package": f"p{i:04}"}): float(i + 1)
            for i in range(300)
        },
        at=NOW - 3600,
    )
    yield Api(
        store, registry_for(PopconCollector(dict, Health), CollectorRegistry()), clock=lambda: NOW
    )
    store.close()  # Python 3.13 warns about a connection left open


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("end=1e18", "end: must lie between 1970"),
        ("start=-5", "start: must lie between 1970"),
        ("start=99999-01-01", "start: not an ISO 8601"),
        ("end=nan", "end: not a finite number"),
        ("limit=0", "limit: a whole number from 1 to 10000"),
        ("limit=1e3", "limit: a whole number"),
        ("offset=-1", "offset: a whole number"),
        ("aggregate=minute", "aggregate must be one of"),
    ],
)
def test_malformed_numbers_are_a_400_naming_the_parameter(api: Api, query: str, words: str) -> None:
    for path in ("/api/v1/popularity?", "/api/v1/packages?"):
        if "aggregate" in query and "packages" in path:
            continue
        response = api.handle(path + query)
        assert response.status == 400, (path, query)
        assert words in json.loads(response.body)["error"]


def test_an_over_large_question_is_a_400_saying_what_to_narrow(api: Api) -> None:
    # 365 days of hours x 300 series: far beyond the bound.
    response = api.handle("/api/v1/popularity?aggregate=hour&start=2023-05-01&end=2024-05-02")
    assert response.status == 400
    error = json.loads(response.body)["error"]
    assert f"more than {MAX_CELLS} values" in error
    for hint in ("window", "aggregate", "hub", "limit"):
        assert hint in error
    # Narrowed (fewer series per page), the same window is answered.
    narrowed = api.handle(
        "/api/v1/popularity?aggregate=hour&start=2023-05-01&end=2024-05-02&limit=10"
    )
    assert narrowed.status == 200
    assert len({row["package"] for row in json.loads(narrowed.body)["counts"]}) == 10


def test_pages_cover_every_series_once_largest_first(api: Api) -> None:
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        document = json.loads(api.handle(f"/api/v1/packages?limit=128&offset={offset}").body)
        assert document["series"] == 300
        seen += [row["package"] for row in document["totals"]]
        offset = document["next_offset"]
    assert seen == [f"p{i:04}" for i in reversed(range(300))]
    counts = json.loads(api.handle("/api/v1/popularity?limit=5&offset=295").body)["counts"]
    assert {row["package"] for row in counts} == {f"p{i:04}" for i in range(5)}


def test_the_default_page_is_bounded(api: Api) -> None:
    document = json.loads(api.handle("/api/v1/packages").body)
    assert (document["limit"], len(document["totals"]), document["next_offset"]) == (
        1000,
        300,
        None,
    )


def test_one_question_asked_by_many_at_once_is_answered_once() -> None:
    cache: AnswerCache[Response] = AnswerCache(seconds=60)
    calls: list[int] = []
    gate = threading.Event()

    def compute() -> Response:
        calls.append(1)
        gate.wait(5)
        return Response(200, "text/plain", b"x")

    threads = [threading.Thread(target=cache.get, args=("k", compute)) for _ in range(20)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)  # let every thread reach the cache (no readiness signal to wait for)
    gate.set()
    for thread in threads:
        thread.join(10)
    assert len(calls) == 1


def test_the_cache_is_bounded_in_bytes_and_entries() -> None:
    cache: AnswerCache[Response] = AnswerCache(seconds=60, entries=10, size=1000)
    for i in range(50):
        cache.get(i, lambda: Response(200, "text/plain", b"y" * 100))
    assert len(cache._kept) <= 10
    assert cache._bytes <= 1000
    cache.get("big", lambda: Response(200, "text/plain", b"z" * 900))
    assert "big" not in cache._kept  # larger than a quarter of the budget: not kept
    cache.get("error", lambda: Response(400, "text/plain", b"no"))
    assert "error" not in cache._kept


def test_answers_follow_the_store_at_its_next_write(api: Api) -> None:
    first = json.loads(api.handle("/api/v1/packages?limit=1").body)["totals"][0]["count"]
    api.store.add(
        {series_key(IMPORTED_PACKAGE, {"namespace": "", "package": "p0299"}): 1}, at=NOW - 60
    )
    again = json.loads(api.handle("/api/v1/packages?limit=1").body)["totals"][0]["count"]
    assert again == first + 1
