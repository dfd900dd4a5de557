"""The statsd line parser (statsd_line.parse_line): the grammar statsd_exporter accepts, and nothing
but LineError for anything else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from popularity_contest.collector import statsd_line
from popularity_contest.collector.outcomes import Bad
from popularity_contest.inprocess import lines as wire


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("a.b:1|c", ("a.b", {}, [(1.0, "c")])),
        (
            "python_popcon.imported_package.numpy:1|c",
            ("python_popcon.imported_package.numpy", {}, [(1.0, "c")]),
        ),
        ("a:2|c|@0.5", ("a", {}, [(4.0, "c")])),
        ("a:3|g|@0.5", ("a", {}, [(3.0, "g")])),  # the rate divides counters only
        ("a:1.5|c", ("a", {}, [(1.5, "c")])),
        ("a:-1|c", ("a", {}, [(-1.0, "c")])),  # refusing negative counters is the collector's job
        ("a:1|c:2|c", ("a", {}, [(1.0, "c"), (2.0, "c")])),
        ("a:10|ms", ("a", {}, [(10.0, "ms")])),
        ("a,k=v,x=y:1|c", ("a", {"k": "v", "x": "y"}, [(1.0, "c")])),
        ("a:1|c|#k:v,#x:y", ("a", {"k": "v", "x": "y"}, [(1.0, "c")])),
        ("a:1|c|#k-1:v", ("a", {"k_1": "v"}, [(1.0, "c")])),
        ("a:1|c|T1656581400", ("a", {}, [(1.0, "c")])),
        ("a:1|c|#k:v|c:container", ("a", {"k": "v"}, [(1.0, "c")])),
    ],
)
def test_parses_valid_lines(line: str, expected: object) -> None:
    assert statsd_line.parse_line(line) == expected


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "malformed_line"),
        ("name-only", "malformed_line"),
        (":1|c", "malformed_line"),
        ("a:1", "malformed_component"),
        ("a:1|c|@0.5|#k:v|x|y|z", "malformed_component"),
        ("a:|c", "malformed_value"),
        ("a:one|c", "malformed_value"),
        ("a:nan|c", "malformed_value"),
        ("a:inf|c", "malformed_value"),
        ("a:1e999|c", "malformed_value"),
        ("a:1_000|c", "malformed_value"),
        ("a: 1|c", "malformed_value"),
        ("a:1|q", "illegal_event"),
        ("a:1|c|@0", "invalid_sample_factor"),
        ("a:1|c|@-0.5", "invalid_sample_factor"),
        ("a:1|c|@2", "invalid_sample_factor"),
        ("a:1|c|@x", "invalid_sample_factor"),
        ("a:1|c|@1e-999", "invalid_sample_factor"),
        ("a:1|c|x", "invalid_sample_factor"),
        ("a:1|c||", "malformed_component"),
        ("a,k:1|c", "malformed_tag"),
        ("a,=v:1|c", "malformed_tag"),
        ("a:1|c|#k", "malformed_tag"),
        (",k=v:1|c", "malformed_line"),
        ("a,k=v:1|c|#x:y", "mixed_tagging_styles"),
    ],
)
def test_refuses_bad_lines_with_a_reason(line: str, reason: str) -> None:
    with pytest.raises(statsd_line.LineError) as caught:
        statsd_line.parse_line(line)
    assert caught.value.reason is Bad(reason)  # the value is /metrics' `reason` label


def test_tag_keys_become_label_names() -> None:
    assert statsd_line.escape_label_name("1st") == "_1st"
    assert statsd_line.escape_label_name('a"b\\c') == "a_b_c"


safe_components = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-",
    min_size=1,
    max_size=wire.MAX_COMPONENT_LENGTH,
)


@given(st.lists(safe_components, min_size=1, max_size=6), st.integers(0, 10**9))
def test_round_trip_of_what_the_reporter_sends(components: list[str], value: int) -> None:
    name = ".".join(components)
    assert statsd_line.parse_line(wire.counter_line(name, value)) == (
        name,
        {},
        [(float(value), "c")],
    )


@given(st.text(max_size=300))
def test_arbitrary_text_parses_or_raises_line_error_only(text: str) -> None:
    try:
        name, _, samples = statsd_line.parse_line(text)
    except statsd_line.LineError as error:
        reason = error.reason
        assert reason
        return
    assert name
    assert ":" not in name
    assert samples
    for value, stat_type in samples:
        assert stat_type in statsd_line.STAT_TYPES
        assert value - value == 0.0  # finite


statsd_ish = st.text(alphabet="ab.:|@#,=c0123456789-+eE \x00é", max_size=80)


@given(statsd_ish)
def test_statsd_like_text_parses_or_raises_line_error_only(text: str) -> None:
    try:
        _, _, samples = statsd_line.parse_line(text)
    except statsd_line.LineError:
        return
    assert all(value - value == 0.0 for value, _ in samples)
