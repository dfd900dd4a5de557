"""``/healthz`` byte for byte, from a collector wired as ``serve`` wires it (no sockets).

Probes, load balancers and the hub's service check read this body: its keys, their order
and the status codes are a contract.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from popularity_contest.collector.ingest import Ingest
from popularity_contest.collector.mapping import Mapper
from popularity_contest.collector.server import Server
from popularity_contest.collector.settings import Config
from popularity_contest.collector.store import Store
from popularity_contest.collector.web.api import Api

WARNING = (
    "series cap reached: new packages and hubs are not counted; drop junk series"
    " with `popularity-contest prune` or raise --max-series"
)
JSON = "application/json; charset=utf-8"


def config(db: Path, max_series: int) -> Config:
    return Config(
        statsd=None,
        http=("127.0.0.1", 0),
        db=str(db),
        mapping=None,
        environment=None,
        flush_interval=1.0,
        hourly_retention_days=7.0,
        max_series=max_series,
        max_datagram=65000,
        rcvbuf=4096,
        min_processes=1,
    )


def unhealthy(problem: str) -> bytes:
    """The 503 body of an empty collector with a cap of 2 series (problem: plain ASCII)."""
    return (
        b'{"status":"unhealthy","problem":"'
        + problem.encode()
        + b'","series":0,"series_limit":2,"pending_series":0}\n'
    )


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[tuple[Server, Store, Api]]:
    """A ``Server`` with its ingest (cap: 2 series) and the ``Api`` it would serve."""
    server = Server(config(tmp_path / "s.db", max_series=2))
    server.ingest = Ingest(Mapper.load(), max_series=2)
    store = Store.open(tmp_path / "s.db")
    api = Api(store, CollectorRegistry(), healthy=server.problem, details=server.health_details)
    yield server, store, api
    store.close()


def test_a_healthy_collector_says_ok_with_its_series(wired: tuple[Server, Store, Api]) -> None:
    server, _, api = wired
    answer = api.handle("/healthz")
    assert (answer.status, answer.content_type) == (200, JSON)
    assert answer.body == b'{"status":"ok","series":0,"series_limit":2,"pending_series":0}\n'
    assert server.warnings() == []


def test_the_series_cap_adds_a_warning_to_healthz_and_the_page(
    wired: tuple[Server, Store, Api],
) -> None:
    server, _, api = wired
    assert server.ingest is not None
    server.ingest.feed(
        b"python_popcon.imported_package.a:1|c\npython_popcon.imported_package.b:1|c"
    )
    server.ingest.feed(b"python_popcon.imported_package.c:1|c")  # past the cap
    answer = api.handle("/healthz")
    assert answer.status == 200
    assert answer.body == (
        b'{"status":"ok","series":2,"series_limit":2,"pending_series":2,"warning":"'
        + WARNING.encode()
        + b'"}\n'
    )
    assert server.warnings() == [WARNING]


def test_an_unusable_store_is_a_503_naming_the_problem_before_the_details(
    wired: tuple[Server, Store, Api],
) -> None:
    _, store, api = wired
    store.close()
    answer = api.handle("/healthz")
    assert (answer.status, answer.content_type) == (503, JSON)
    problem = f"{store.path}: Cannot operate on a closed database."
    assert answer.body == unhealthy(problem)


def test_without_details_healthz_is_the_status_alone(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    api = Api(store, CollectorRegistry())
    assert api.handle("/healthz").body == b'{"status":"ok"}\n'
    store.close()
    answer = api.handle("/healthz")
    assert answer.status == 503
    assert answer.body.startswith(b'{"status":"unhealthy","problem":"')


def test_a_store_problem_is_a_503_and_the_pages_warning(
    wired: tuple[Server, Store, Api], tmp_path: Path
) -> None:
    server, store, api = wired
    server.store = store
    (tmp_path / "s.db").unlink()
    server.flush()  # notices the store is gone
    problem = f"{store.path}: the store file was deleted while in use (restart to start anew)"
    answer = api.handle("/healthz")
    assert answer.status == 503
    assert answer.body == unhealthy(problem)
    assert server.warnings() == [f"This collector is unhealthy: {problem}"]
