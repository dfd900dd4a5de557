"""The statsd line format the reporter writes, checked against the `statsd` package."""

from __future__ import annotations

import pytest
import statsd
from hypothesis import given
from hypothesis import strategies as st

from popularity_contest.inprocess import lines as wire
from popularity_contest.names import LEAF_PROCESSES_REPORTED


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("numpy", True),
        ("PIL", True),
        ("zope-interface", True),
        ("_private", True),
        ("", False),
        ("a.b", False),
        ("a:1|c", False),
        ("tag|#x:y", False),
        ("a b", False),
        ("line\nbreak", False),
        ("über", False),
        ("a,b", False),
        ("a[b]", False),
        ("a@0.1", False),
        ("x" * 101, False),
        (None, False),
        (b"bytes", False),
    ],
)
def test_safe_components(text: object, safe: bool) -> None:
    assert wire.is_safe_component(text) is safe


@pytest.mark.parametrize(
    ("prefix", "safe"),
    [
        ("python_popcon.imported_package", True),
        ("python_popcon.hub.my-hub.imported_package", True),
        ("single", True),
        ("a..b", False),
        (".a", False),
        ("a.", False),
        ("a.b:1|c", False),
        ("", False),
    ],
)
def test_safe_prefixes(prefix: str, safe: bool) -> None:
    assert wire.is_safe_prefix(prefix) is safe


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("python_popcon.imported_package", "python_popcon.processes_reported"),
        ("python_popcon.hub.ns.imported_package", "python_popcon.hub.ns.processes_reported"),
        ("popcon", "popcon.processes_reported"),
    ],
)
def test_sibling_replaces_the_last_component(prefix: str, expected: str) -> None:
    assert wire.sibling(prefix, LEAF_PROCESSES_REPORTED) == expected


class _Recorder(statsd.StatsClient):  # type: ignore[misc]
    """The reference client, with its socket replaced by a list."""

    def __init__(self, maxudpsize: int) -> None:
        super().__init__("127.0.0.1", 8125, maxudpsize=maxudpsize)
        self.sent: list[bytes] = []

    def _send(self, data: str) -> None:
        self.sent.append(data.encode("ascii"))


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=100)


@given(packages=st.lists(names, max_size=600), size=st.sampled_from([64, 120, 512, 1432]))
def test_datagrams_match_the_statsd_pipeline(packages: list[str], size: int) -> None:
    client = _Recorder(size)
    try:
        with client.pipeline() as pipe:
            for name in packages:
                pipe.incr(f"python_popcon.imported_package.{name}")
    finally:
        client.close()
    lines = [wire.counter_line(f"python_popcon.imported_package.{n}") for n in packages]
    assert wire.pack(lines, size) == client.sent


def test_datagrams_stay_below_the_limit() -> None:
    lines = [wire.counter_line(f"python_popcon.imported_package.pkg{i:03d}") for i in range(500)]
    datagrams = wire.pack(lines, 512)
    assert all(len(d) < 512 for d in datagrams)
    assert b"\n".join(datagrams).decode().split("\n") == lines


@pytest.mark.parametrize(
    ("prefix", "user_site", "expected"),
    [
        ("python_popcon.imported_package", False, "python_popcon.imported_package.numpy"),
        ("python_popcon.imported_package", True, "python_popcon.user_imported_package.numpy"),
        (
            "python_popcon.hub.ns.imported_package",
            True,
            "python_popcon.hub.ns.user_imported_package.numpy",
        ),
    ],
)
def test_package_names(prefix: str, user_site: bool, expected: str) -> None:
    assert wire.package_name(prefix, "numpy", user_site=user_site) == expected


def test_the_reporter_copies_of_the_statsd_leaves_match_names() -> None:
    # The start-up module copies them so that activation imports one module fewer.
    from popularity_contest import inprocess, names

    for leaf in (
        "LEAF_PROCESSES_REPORTED",
        "LEAF_USER_IMPORTED_PACKAGE",
        "LEAF_LIBRARY_USED",
        "LEAF_DIRECTLY_IMPORTED_PACKAGE",
        "LEAF_DIRECTLY_IMPORTED_USER_PACKAGE",
    ):
        assert getattr(inprocess, leaf) == getattr(names, leaf), leaf
    assert inprocess.DEFAULT_PREFIX == names.DEFAULT_PREFIX
