"""``parse_age``: every age a command, the API or the page accepts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from popularity_contest.answers.window import parse_age, window

UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1y", 365 * 86400),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("2d12h", 2.5 * 86400),
        ("1y2w3d4h5m6s", 365 * 86400 + 14 * 86400 + 3 * 86400 + 4 * 3600 + 5 * 60 + 6),
        ("1.5h", 5400),
        ("0h30m", 1800),
        (" 30d ", 30 * 86400),
    ],
)
def test_compound_ages_and_years(text: str, seconds: float) -> None:
    assert parse_age(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "30",
        "h",
        "1h30",
        "1hh",
        "30m1h",
        "1h1h",
        "0h0m",
        "-1h30m",
        "1y-1d",
        "1 year",
        "1e3s",
    ],
)
def test_parse_age_refuses_what_is_not_one_age(text: str) -> None:
    with pytest.raises(ValueError, match="not an age like"):
        parse_age(text)


@given(st.lists(st.integers(min_value=0, max_value=1000), min_size=6, max_size=6))
def test_parse_age_adds_its_parts(numbers: list[int]) -> None:
    parts = [(n, unit) for n, unit in zip(numbers, UNITS, strict=True) if n]
    text = "".join(f"{n}{unit}" for n, unit in parts)
    expected = sum(n * UNITS[unit] for n, unit in parts)
    if expected:
        assert parse_age(text) == expected
    else:
        with pytest.raises(ValueError, match="not an age like"):
            parse_age(text)


def test_since_takes_a_compound_age() -> None:
    span = window("1h30m", None, None, now=10_000.0)
    assert (span.start, span.end) == (4600.0, 10_000.0)
