"""The API serves direct-import counts under their short name, behind the privacy threshold."""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client import CollectorRegistry

from popularity_contest.collector.exposition import Health, PopconCollector, registry_for
from popularity_contest.collector.store import Store, series_key
from popularity_contest.collector.web.api import Api
from popularity_contest.names import DIRECTLY_IMPORTED_PACKAGE

NOW = 1_700_000_000.0


def test_direct_counts_are_served_and_hidden_below_the_threshold(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "popcon.sqlite3")
    store.add(
        {
            series_key(DIRECTLY_IMPORTED_PACKAGE, {"namespace": "", "package": "numpy"}): 4,
            series_key(DIRECTLY_IMPORTED_PACKAGE, {"namespace": "", "package": "rare"}): 1,
        },
        at=NOW - 3600,
    )
    registry = registry_for(PopconCollector(dict, Health), CollectorRegistry())
    for threshold, expected in ((1, {"numpy": 4, "rare": 1}), (2, {"numpy": 4})):
        api = Api(store, registry, clock=lambda: NOW, min_processes=threshold)
        reply = api.handle("/api/v1/packages?metric=directly_imported_package")
        assert reply.status == 200
        document = json.loads(reply.body)
        assert document["metric"] == DIRECTLY_IMPORTED_PACKAGE
        assert {row["package"]: row["count"] for row in document["totals"]} == expected
    store.close()
