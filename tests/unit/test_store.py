"""The SQLite store: schema and migrations, buckets, aggregates, roll-up, errors."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from popularity_contest.answers.window import parse_time
from popularity_contest.collector import store as store_module
from popularity_contest.collector.store import (
    DAY,
    HOUR,
    IMPORTED_PACKAGE,
    PROCESSES_REPORTED,
    Store,
    StoreError,
    period_start,
    series_key,
)

NUMPY = series_key(IMPORTED_PACKAGE, {"namespace": "", "package": "numpy"})
PANDAS_HUB = series_key(IMPORTED_PACKAGE, {"namespace": "hub", "package": "pandas"})
PROCESSES = series_key(PROCESSES_REPORTED, {"namespace": ""})


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store.open(tmp_path / "sub" / "popcon.sqlite3")
    yield opened  # type: ignore[misc]
    opened.close()


def test_new_store_has_the_latest_schema_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store.open(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(store_module.MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_a_newer_schema_is_refused_with_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StoreError, match=r"future\.db: schema version 99"):
        Store.open(path)


def test_a_file_that_is_not_a_database_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"garbage\.db: "):
        Store.open(path)


def test_create_false_refuses_a_missing_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no such store"):
        Store.open(tmp_path / "absent.db", create=False)
    assert not (tmp_path / "absent.db").exists()


def test_counts_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store.open(path) as first:
        first.add({NUMPY: 2, PROCESSES: 1}, at=ts("2024-05-01T10:30:00"))
    with Store.open(path) as second:
        second.add({NUMPY: 3}, at=ts("2024-05-01T10:59:00"))
        assert sorted(second.series_keys()) == sorted([NUMPY, PROCESSES])
        totals = {(t.name, t.labels["namespace"]): t.value for t in second.series_totals()}
    assert totals == {(IMPORTED_PACKAGE, ""): 5.0, (PROCESSES_REPORTED, ""): 1.0}


def test_increments_land_in_the_hour_of_the_flush(store: Store) -> None:
    store.add({NUMPY: 1}, at=ts("2024-05-01T10:00:00"))
    store.add({NUMPY: 1}, at=ts("2024-05-01T10:59:59"))
    store.add({NUMPY: 1}, at=ts("2024-05-01T11:00:00"))
    counts = store.counts(ts("2024-05-01"), ts("2024-05-02"), "hour")
    assert [(c.period.hour, c.value) for c in counts] == [(10, 2.0), (11, 1.0)]


@pytest.mark.parametrize(
    ("moment", "aggregate", "start"),
    [
        ("2024-05-15T13:45:00", "hour", "2024-05-15T13:00:00"),
        ("2024-05-15T13:45:00", "day", "2024-05-15T00:00:00"),
        ("2024-05-15T13:45:00", "week", "2024-05-13T00:00:00"),  # a Wednesday -> Monday
        ("2024-05-13T00:00:00", "week", "2024-05-13T00:00:00"),
        ("2024-05-19T23:59:59", "week", "2024-05-13T00:00:00"),  # Sunday ends the week
        ("2024-05-15T13:45:00", "month", "2024-05-01T00:00:00"),
        ("2024-05-15T13:45:00", "quarter", "2024-04-01T00:00:00"),
        ("2024-12-31T23:00:00", "quarter", "2024-10-01T00:00:00"),
        ("2024-05-15T13:45:00", "year", "2024-01-01T00:00:00"),
    ],
)
def test_period_start(moment: str, aggregate: str, start: str) -> None:
    assert period_start(int(ts(moment)), aggregate) == int(ts(start))


def test_counts_per_period_with_namespace_and_metric_filters(store: Store) -> None:
    store.add({NUMPY: 1, PANDAS_HUB: 4, PROCESSES: 9}, at=ts("2024-01-31T12:00:00"))
    store.add({NUMPY: 2}, at=ts("2024-02-01T12:00:00"))
    store.add({NUMPY: 5}, at=ts("2024-04-01T00:00:00"))
    monthly = store.counts(ts("2024-01-01"), ts("2025-01-01"), "month")
    assert [(c.period.month, c.labels["package"], c.value) for c in monthly] == [
        (1, "pandas", 4.0),  # largest first within a period
        (1, "numpy", 1.0),
        (2, "numpy", 2.0),
        (4, "numpy", 5.0),
    ]
    quarterly = store.counts(ts("2024-01-01"), ts("2025-01-01"), "quarter", namespace="")
    assert [(c.period.month, c.value) for c in quarterly] == [(1, 3.0), (4, 5.0)]
    processes = store.counts(0, ts("2025-01-01"), "year", metric=PROCESSES_REPORTED)
    assert [(c.period.year, c.value) for c in processes] == [(2024, 9.0)]


def test_window_is_start_inclusive_end_exclusive(store: Store) -> None:
    store.add({NUMPY: 1}, at=ts("2024-05-01T10:00:00"))
    assert store.totals(ts("2024-05-01T10:00:00"), ts("2024-05-01T11:00:00"))[0].value == 1.0
    assert store.totals(ts("2024-05-01T09:00:00"), ts("2024-05-01T10:00:00")) == []
    naive = datetime(2024, 5, 1, 10)
    assert store.totals(naive, datetime(2024, 5, 1, 11))[0].value == 1.0


def test_totals_are_largest_first_and_namespaces_listed(store: Store) -> None:
    store.add({NUMPY: 1, PANDAS_HUB: 4}, at=ts("2024-05-01T10:00:00"))
    totals = store.totals(0, ts("2025-01-01"))
    assert [(t.labels["package"], t.value) for t in totals] == [("pandas", 4.0), ("numpy", 1.0)]
    assert store.namespaces() == ["", "hub"]
    assert store.metrics() == [IMPORTED_PACKAGE]
    assert [t.value for t in store.totals(0, ts("2025-01-01"), namespace="hub")] == [4.0]


def test_roll_up_keeps_every_count_and_makes_days(store: Store) -> None:
    now = ts("2024-06-30T12:00:00")
    for hour in range(0, 24, 3):
        store.add({NUMPY: 1, PROCESSES: 2}, at=ts("2024-05-01T00:00:00") + hour * HOUR)
    store.add({NUMPY: 7}, at=ts("2024-06-30T11:00:00"))
    before = store.totals(0, now)
    removed = store.roll_up(retention_days=30, now=now)
    assert removed == 16
    assert store.roll_up(retention_days=30, now=now) == 0  # idempotent
    assert store.totals(0, now) == before
    hourly = store.counts(ts("2024-05-01"), ts("2024-05-02"), "hour")
    assert [(c.period.hour, c.value) for c in hourly] == [(0, 8.0)]  # one daily bucket
    recent = store.counts(ts("2024-06-30"), ts("2024-07-01"), "hour")
    assert [(c.period.hour, c.value) for c in recent] == [(11, 7.0)]  # within retention
    assert store.roll_up(retention_days=30, now=now + 40 * DAY) == 1


def test_bad_aggregate_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="aggregate must be one of"):
        store.counts(0, 1, "fortnight")


def test_label_values_with_any_text_round_trip(store: Store) -> None:
    odd = series_key(IMPORTED_PACKAGE, {"namespace": 'a"b\\c\n', "package": "é{}"})
    store.add({odd: 1}, at=ts("2024-05-01T10:00:00"))
    assert store.series_totals()[0].labels == {"namespace": 'a"b\\c\n', "package": "é{}"}
    assert store.series_keys() == [odd]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1700000000", 1700000000.0),
        (" 1700000000.5 ", 1700000000.5),
        ("2024-05-01", 1714521600.0),
        ("2024-05-01T00:00:00Z", 1714521600.0),
        ("2024-05-01T02:00:00+02:00", 1714521600.0),
    ],
)
def test_parse_time_reads_iso_8601_and_unix_seconds(text: str, expected: float) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "yesterday", ""])
def test_parse_time_refuses_what_is_not_a_finite_time(text: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        parse_time(text)


def test_prune_drops_series_below_a_total_or_matching_a_glob(tmp_path: Path) -> None:
    junk = [series_key(IMPORTED_PACKAGE, {"namespace": "", "package": f"x-{i}"}) for i in range(3)]
    with Store.open(tmp_path / "s.db") as store:
        store.add({NUMPY: 5, PANDAS_HUB: 1, **dict.fromkeys(junk, 1.0)}, at=ts("2024-05-01"))
        assert {t.labels["package"] for t in store.prune(below=2, dry_run=True)} == {
            "pandas",
            "x-0",
            "x-1",
            "x-2",
        }
        assert len(store.series_keys()) == 5  # a dry run deletes nothing
        gone = store.prune(below=2, match="x-*")
        assert sorted(t.labels["package"] for t in gone) == ["x-0", "x-1", "x-2"]
        assert set(store.series_keys()) == {NUMPY, PANDAS_HUB}
        assert store.totals(0, ts("2025-01-01"), metric=None)[0].value == 5
        assert [t.labels["package"] for t in store.prune(match="pan*")] == ["pandas"]
        # The buckets went with the series.
        assert store._query("SELECT COUNT(*) FROM bucket")[0][0] == 1
        with pytest.raises(ValueError, match="below or match"):
            store.prune()


def test_a_writer_notices_another_connection_s_prune(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as serve, Store.open(tmp_path / "s.db") as other:
        serve.add({NUMPY: 1, PANDAS_HUB: 1})
        assert not serve.changed_elsewhere()
        other.prune(match="numpy")
        assert serve.changed_elsewhere()
        assert not serve.changed_elsewhere()
        serve.add({NUMPY: 1})  # recreated as a new series, not written to a deleted id
        assert {t.labels["package"]: t.value for t in serve.series_totals()} == {
            "numpy": 1.0,
            "pandas": 1.0,
        }


def test_a_store_deleted_or_replaced_while_open_is_detected_not_recreated(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dir" / "s.db"
    store = Store.open(path)
    store.add({NUMPY: 1})
    assert store.file_problem() is None
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    assert "deleted" in (store.file_problem() or "")
    with pytest.raises(StoreError, match="deleted while in use"):
        store.add({NUMPY: 1})
    assert not path.exists()
    path.write_bytes(b"")
    assert "replaced" in (store.file_problem() or "")
    store.close()


def test_whole_days_and_partial_edges_sum_like_the_buckets(tmp_path: Path) -> None:
    # The day table must give exactly what summing the buckets in [start, end) gives.
    import random

    rng = random.Random(7)
    base = ts("2024-03-01")
    adds: list[tuple[float, tuple[str, tuple[tuple[str, str], ...]], float]] = []
    with Store.open(tmp_path / "s.db") as store:
        for _ in range(300):
            at = base + rng.randrange(0, 20 * DAY)
            key = rng.choice([NUMPY, PANDAS_HUB, PROCESSES])
            value = float(rng.randrange(1, 5))
            store.add({key: value}, at=at)
            adds.append((at - at % HOUR, key, value))
        store.roll_up(retention_days=10, now=base + 20 * DAY)  # older hours become days
        for _ in range(40):
            start = base + rng.randrange(-DAY, 21 * DAY)
            end = start + rng.randrange(1, 12 * DAY)
            expected: dict[str, float] = {}
            for hour, key, value in adds:
                bucket_start = hour
                if hour < store_cutoff(base):
                    bucket_start = hour - hour % DAY  # rolled up into its day
                if start <= bucket_start < end and key[0] == IMPORTED_PACKAGE:
                    label = dict(key[1])["package"]
                    expected[label] = expected.get(label, 0.0) + value
            got = {t.labels["package"]: t.value for t in store.totals(start, end)}
            assert got == expected, (start, end)
            by_day = store.counts(start, end, "day")
            assert sum(c.value for c in by_day) == sum(expected.values())


def store_cutoff(base: float) -> float:
    moment = int(base + 20 * DAY) - 10 * DAY
    return moment - moment % DAY


def test_a_version_1_store_gets_its_day_table_filled(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(store_module.MIGRATIONS[0])
    db.execute(
        "INSERT INTO series (id, name, labels, namespace, total) VALUES"
        ' (1, ?, \'{"namespace":"","package":"numpy"}\', \'\', 5)',
        (IMPORTED_PACKAGE,),
    )
    day = int(ts("2024-05-01"))
    db.executemany(
        "INSERT INTO bucket (start, width, series_id, value) VALUES (?, ?, 1, ?)",
        [(day + HOUR, HOUR, 2.0), (day + 5 * HOUR, HOUR, 3.0), (day - DAY, DAY, 4.0)],
    )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with Store.open(path) as store:
        assert store.totals(day - DAY, day + DAY)[0].value == 9.0
        assert [c.value for c in store.counts(day - DAY, day + DAY, "day")] == [4.0, 5.0]


def test_label_values_are_read_in_sql_whatever_the_text(tmp_path: Path) -> None:
    with Store.open(tmp_path / "labels.sqlite3") as store:
        store.add(
            {
                series_key(IMPORTED_PACKAGE, {"namespace": "", "cluster": "east"}): 1,
                series_key(IMPORTED_PACKAGE, {"namespace": "", "cluster": 'we"st.$x'}): 1,
                series_key(IMPORTED_PACKAGE, {"namespace": "hub"}): 1,
            }
        )
        assert store.label_values("cluster") == ["", "east", 'we"st.$x']
        assert store.label_values("namespace") == ["", "hub"]
        assert store.label_values('no"such.label') == [""]
