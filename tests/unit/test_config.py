"""Reading the reporter's settings: defaults, valid values, and bad values that disable it."""

from __future__ import annotations

import pytest

from popularity_contest.inprocess.settings import reporter_config


def test_defaults() -> None:
    cfg = reporter_config({})
    assert (cfg.host, cfg.port, cfg.prefix, cfg.max_datagram) == (
        "localhost",
        8125,
        "python_popcon.imported_package",
        512,
    )
    assert (cfg.eager, cfg.count_distributions, cfg.count_local) == (True, False, False)
    assert (cfg.disabled, cfg.problem, cfg.debug) == (False, None, False)


def test_values_are_read() -> None:
    cfg = reporter_config(
        {
            "PYTHON_POPCONTEST_STATSD_HOST": " statsd.monitoring.svc ",
            "PYTHON_POPCONTEST_STATSD_PORT": "9125",
            "PYTHON_POPCONTEST_STATSD_PREFIX": "python_popcon.hub.prod.imported_package",
            "PYTHON_POPCONTEST_MAX_DATAGRAM": "1432",
            "PYTHON_POPCONTEST_EAGER": "0",
            "PYTHON_POPCONTEST_COUNT_DISTRIBUTIONS": "yes",
            "PYTHON_POPCONTEST_DEBUG": "1",
        }
    )
    assert (cfg.host, cfg.port, cfg.max_datagram) == ("statsd.monitoring.svc", 9125, 1432)
    assert cfg.prefix == "python_popcon.hub.prod.imported_package"
    assert (cfg.eager, cfg.count_distributions, cfg.debug, cfg.disabled) == (
        False,
        True,
        True,
        False,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PYTHON_POPCONTEST_STATSD_PORT", "abc"),
        ("PYTHON_POPCONTEST_STATSD_PORT", "0"),
        ("PYTHON_POPCONTEST_STATSD_PORT", "99999"),
        ("PYTHON_POPCONTEST_STATSD_PORT", "٣"),  # a non-ASCII digit
        ("PYTHON_POPCONTEST_STATSD_HOST", ""),
        ("PYTHON_POPCONTEST_STATSD_HOST", "a b"),
        ("PYTHON_POPCONTEST_STATSD_HOST", "bücher.example"),
        ("PYTHON_POPCONTEST_STATSD_HOST", "x" * 300),
        ("PYTHON_POPCONTEST_STATSD_PREFIX", "a|#b"),
        ("PYTHON_POPCONTEST_STATSD_PREFIX", "a\nb"),
        # One component: foo.processes_reported would read as a package of prefix foo.
        ("PYTHON_POPCONTEST_STATSD_PREFIX", "foo"),
        ("PYTHON_POPCONTEST_MAX_DATAGRAM", "lots"),
    ],
)
def test_a_bad_value_disables_reporting_and_says_why(variable: str, value: str) -> None:
    cfg = reporter_config({variable: value})
    assert cfg.disabled
    assert cfg.problem is not None
    assert variable in cfg.problem


@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_disable_is_honoured_without_a_problem(value: str) -> None:
    cfg = reporter_config({"PYTHON_POPCONTEST_DISABLE": value})
    assert (cfg.disabled, cfg.problem) == (True, None)


def test_datagram_size_is_clamped() -> None:
    assert reporter_config({"PYTHON_POPCONTEST_MAX_DATAGRAM": "1"}).max_datagram == 64
    assert reporter_config({"PYTHON_POPCONTEST_MAX_DATAGRAM": "99999999"}).max_datagram == 65000
