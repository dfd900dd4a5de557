"""Ingest (datagram -> pending increments), the /metrics collector and the API, without sockets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from popularity_contest.collector.exposition import Health, PopconCollector, registry_for
from popularity_contest.collector.ingest import Ingest, IngestStats
from popularity_contest.collector.mapping import Mapper
from popularity_contest.collector.outcomes import Bad, Refused
from popularity_contest.collector.store import IMPORTED_PACKAGE, Store, series_key
from popularity_contest.collector.web.api import Api, Response

MAPPER = Mapper.load()
NUMPY = series_key(IMPORTED_PACKAGE, {"namespace": "", "package": "numpy"})


def ingest(max_series: int = 100, max_datagram: int = 1000) -> Ingest:
    return Ingest(MAPPER, max_series=max_series, max_datagram=max_datagram)


def test_report_lines_become_increments_and_repeats_add_up() -> None:
    sink = ingest()
    datagram = b"python_popcon.imported_package.numpy:1|c\npython_popcon.processes_reported:1|c\n"
    sink.feed(datagram)
    sink.feed(datagram)
    assert sink.take() == {
        NUMPY: 2.0,
        series_key("python_popcon_processes_reported_total", {"namespace": ""}): 2.0,
    }
    assert sink.take() == {}
    stats = sink.stats()
    assert (stats.datagrams, stats.lines, stats.stored) == (2, 4, 4)


@pytest.mark.parametrize(
    ("line", "outcome"),
    [
        (b"\xff\xfe:1|c", Bad.MALFORMED_LINE),
        (b"garbage", Bad.MALFORMED_LINE),
        (b"python_popcon.imported_package.numpy:-1|c", Bad.ILLEGAL_NEGATIVE_COUNTER),
        (b"python_popcon.imported_package.numpy:1|c|@0.0000001", Bad.INCREMENT_TOO_LARGE),
        (b"python_popcon.imported_package.numpy:1|c|@7", Bad.INVALID_SAMPLE_FACTOR),
        (b"python_popcon.imported_package.numpy:1|g", Refused.IGNORED),
        (b"python_popcon.imported_package.numpy:1|s", Refused.IGNORED),
        (b"python_popcon.somewhere.numpy:1|c", Refused.UNMAPPED),
    ],
)
def test_refused_lines_are_counted_by_reason_and_store_nothing(
    line: bytes, outcome: Bad | Refused
) -> None:
    sink = ingest()
    sink.feed(line)
    sink.feed(line)  # the second time comes from the cache: same outcome
    assert sink.take() == {}
    assert sink.stats().refused == {outcome: 2}


def test_refusal_label_values_are_pinned() -> None:
    # The `reason` label values of popcon_collector_lines_bad_total are a contract (alerts
    # and dashboards select on them): renaming a member must not rename a label.
    assert sorted(reason.value for reason in Bad) == [
        "empty_metric_name",
        "illegal_event",
        "illegal_negative_counter",
        "increment_too_large",
        "invalid_label_name",
        "invalid_metric_name",
        "invalid_sample_factor",
        "label_too_long",
        "line_too_long",
        "malformed_component",
        "malformed_line",
        "malformed_tag",
        "malformed_value",
        "mixed_tagging_styles",
        "name_too_long",
        "reserved_label",
        "too_many_labels",
    ]
    text = exposition({}, IngestStats(refused=dict.fromkeys(Refused, 1)))
    for name in ("unmapped", "dropped_by_rule", "ignored"):
        assert f"popcon_collector_lines_{name}_total 1.0" in text
    assert "popcon_collector_series_overflow_total 1.0" in text


def test_sample_rate_scales_counters() -> None:
    sink = ingest()
    sink.feed(b"python_popcon.imported_package.numpy:1|c|@0.25")
    assert sink.take() == {NUMPY: 4.0}


def test_oversize_datagrams_are_dropped_whole() -> None:
    sink = ingest(max_datagram=100)
    sink.feed(b"python_popcon.imported_package.numpy:1|c\n" * 10)
    assert sink.take() == {}
    assert (sink.stats().oversize, sink.stats().lines) == (1, 0)


def test_series_cap_counts_overflow_and_keeps_known_series() -> None:
    sink = ingest(max_series=2)
    lines = b"\n".join(b"python_popcon.imported_package.p%d:1|c" % i for i in range(5))
    sink.feed(lines)
    sink.feed(b"python_popcon.imported_package.p0:1|c")
    assert sorted(dict(key[1])["package"] for key in sink.take()) == ["p0", "p1"]
    assert sink.stats().refused == {Refused.OVERFLOW: 3}
    assert sink.series_count() == 2


def test_tags_add_labels_but_rule_labels_win() -> None:
    sink = ingest()
    sink.feed(b"python_popcon.imported_package.numpy:1|c|#package:evil,extra:x")
    assert sink.take() == {
        series_key(IMPORTED_PACKAGE, {"namespace": "", "package": "numpy", "extra": "x"}): 1.0
    }


def test_give_back_keeps_increments_after_a_failed_flush() -> None:
    sink = ingest()
    sink.feed(b"python_popcon.imported_package.numpy:1|c")
    taken = sink.take()
    sink.feed(b"python_popcon.imported_package.numpy:1|c")
    sink.give_back(taken)
    assert sink.take() == {NUMPY: 2.0}


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=200), max_size=5))
def test_arbitrary_bytes_never_raise_and_every_line_is_accounted_for(
    datagrams: list[bytes],
) -> None:
    sink = ingest()
    for datagram in [*datagrams, b"\n".join(datagrams)]:
        sink.feed(datagram)
    stats = sink.stats()
    assert stats.lines == stats.stored + sum(stats.refused.values())


def exposition(series: dict, stats: IngestStats | None = None) -> str:  # type: ignore[type-arg]
    health = Health(ingest=stats or IngestStats())
    registry = registry_for(
        PopconCollector(lambda: series, lambda: health, MAPPER.help), CollectorRegistry()
    )
    return generate_latest(registry).decode("utf-8")


def test_metrics_names_are_exactly_the_mapped_names_and_values_escaped() -> None:
    hostile = 'x"} 1\nevil_metric{a="b'
    series = {
        NUMPY: 3.0,
        series_key(IMPORTED_PACKAGE, {"namespace": hostile, "package": "p"}): 1.0,
        series_key("some_gauge_like_name", {"kind": "x"}): 2.0,
    }
    text = exposition(
        series, IngestStats(lines=7, refused={Bad.MALFORMED_LINE: 2, Refused.UNMAPPED: 1})
    )
    assert "evil_metric" not in [f.name for f in text_string_to_metric_families(text)]
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[(IMPORTED_PACKAGE, (("namespace", ""), ("package", "numpy")))] == 3.0
    assert samples[(IMPORTED_PACKAGE, (("namespace", hostile), ("package", "p")))] == 1.0
    assert samples[("some_gauge_like_name", (("kind", "x"),))] == 2.0  # name kept exactly
    assert samples[("popcon_collector_lines_received_total", ())] == 7.0
    assert samples[("popcon_collector_lines_bad_total", (("reason", "malformed_line"),))] == 2.0
    assert samples[("popcon_collector_lines_unmapped_total", ())] == 1.0
    assert "# TYPE python_popcon_imported_package_total counter" in text


def test_series_of_one_name_with_different_label_names_are_all_exposed() -> None:
    # One tagged line must not hide the untagged series of the same metric (nor the reverse).
    sink = ingest()
    sink.feed(b"python_popcon.imported_package.a:1|c\npython_popcon.imported_package.b:2|c")
    sink.feed(b"python_popcon.imported_package.x:1|c|#zz:b")
    sink.feed(b"python_popcon.imported_package.y:1|c|#aa:c")
    text = exposition(sink.take())
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    empty = {"aa": "", "zz": "", "namespace": ""}
    for package, extra, value in (("a", {}, 1), ("b", {}, 2), ("x", {"zz": "b"}, 1)):
        labels = tuple(sorted({**empty, "package": package, **extra}.items()))
        assert samples[(IMPORTED_PACKAGE, labels)] == value
    assert text.count("# TYPE python_popcon_imported_package_total counter") == 1


def test_absent_and_empty_label_are_one_series_summed() -> None:
    series = {
        series_key(IMPORTED_PACKAGE, {"namespace": "", "package": "a"}): 1.0,
        series_key(IMPORTED_PACKAGE, {"package": "a"}): 2.0,
    }
    text = exposition(series)
    assert text.count(IMPORTED_PACKAGE + "{") == 1
    assert f'{IMPORTED_PACKAGE}{{namespace="",package="a"}} 3.0' in text


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"python_popcon.imported_package.y:1|c|#__name__:evil", "reserved_label"),
        (b"python_popcon.imported_package.y,__x=1:1|c", "reserved_label"),
        (b"python_popcon.imported_package.y:1|c|#k:" + b"v" * 300, "label_too_long"),
        (b"python_popcon.imported_package." + b"p" * 300 + b":1|c", "label_too_long"),
        (
            b"python_popcon.imported_package.y:1|c|#" + b",".join(b"k%d:v" % i for i in range(20)),
            "too_many_labels",
        ),
        (b"python_popcon.imported_package." + b"p" * 2000 + b":1|c", "line_too_long"),
    ],
)
def test_labels_and_sizes_that_could_break_or_bloat_are_refused_and_counted(
    line: bytes, reason: str
) -> None:
    sink = ingest(max_datagram=10_000)
    sink.feed(line)
    assert sink.take() == {}
    assert sink.stats().refused == {Bad(reason): 1}
    text = exposition({}, sink.stats())
    assert list(text_string_to_metric_families(text))  # still parses
    assert f'popcon_collector_lines_bad_total{{reason="{reason}"}} 1.0' in text


def test_line_cache_is_bounded_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    from popularity_contest.collector import ingest as module

    monkeypatch.setattr(module, "CACHE_BYTES", 20_000)
    sink = ingest(max_datagram=10_000)
    for i in range(200):
        sink.feed(b"unmapped.%d." % i + b"x" * 900 + b":1|c")
    assert sink._cache_bytes <= 20_000
    assert len(sink._cache) <= 20_000 // 900
    assert sink.stats().refused == {Refused.UNMAPPED: 200}


def test_series_cap_is_logged_once_and_known_series_keep_counting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = ingest(max_series=2)
    sink.feed(b"python_popcon.imported_package.a:1|c\npython_popcon.imported_package.b:1|c")
    for package in (b"c", b"d", b"e"):
        sink.feed(b"python_popcon.imported_package." + package + b":1|c")
    sink.feed(b"python_popcon.imported_package.a:1|c")
    assert sink.take()[series_key(IMPORTED_PACKAGE, {"namespace": "", "package": "a"})] == 2.0
    assert sink.stats().refused == {Refused.OVERFLOW: 3}
    assert sink.full()
    assert [r.getMessage() for r in caplog.records].count(
        next(r.getMessage() for r in caplog.records if "series cap reached" in r.getMessage())
    ) == 1
    assert "popularity-contest prune" in caplog.text
    # After a prune, the collector learns the series left and counts new ones again.
    sink.reset_known([series_key(IMPORTED_PACKAGE, {"namespace": "", "package": "a"})])
    sink.feed(b"python_popcon.imported_package.c:1|c")
    assert series_key(IMPORTED_PACKAGE, {"namespace": "", "package": "c"}) in sink.take()
    assert sink.full()


def test_api_endpoints(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    store.add({NUMPY: 3}, at=1714557600)  # 2024-05-01T10:00:00Z
    api = Api(store, registry_for(PopconCollector(dict, Health), CollectorRegistry()))
    body = json.loads(api.handle("/api/v1/popularity?start=2024-05-01&end=2024-05-02").body)
    assert body["counts"] == [
        {"period": "2024-05-01T00:00:00Z", "namespace": "", "package": "numpy", "count": 3}
    ]
    csv_text = api.handle("/api/v1/packages?start=1714521600&end=2024-06-01&format=csv").body
    assert csv_text.decode() == "namespace,package,count\n,numpy,3\n"
    assert json.loads(api.handle("/api/v1/packages?namespace=hub&start=0").body)["totals"] == []
    assert api.handle("/api/v1/popularity?aggregate=fortnight").status == 400
    assert api.handle("/api/v1/popularity?start=yesterday").status == 400
    assert api.handle("/api/v1/popularity?start=2024-02-01&end=2024-01-01").status == 400
    assert api.handle("/nope").status == 404
    assert api.handle("/healthz").status == 200
    assert json.loads(api.handle("/api/v1/namespaces").body) == {"hubs": [""], "namespaces": [""]}
    store.close()
    assert api.handle("/healthz").status == 503


def test_api_hands_other_paths_to_the_page_hook(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    registry = registry_for(PopconCollector(dict, Health), CollectorRegistry())
    api = Api(
        store, registry, page=lambda t: Response(200, "text/html", b"<p>") if t == "/" else None
    )
    assert api.handle("/").body == b"<p>"
    assert api.handle("/metrics").content_type.startswith("text/plain")
    assert api.handle("/elsewhere").status == 404
    store.close()
