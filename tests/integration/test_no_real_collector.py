"""The suite never reports to a collector it did not start (never the default 127.0.0.1:8125).

``tests/conftest.py`` points the pytest process, and every subprocess started through
``tests.envkit.clean_env``, at a UDP sink the session owns. This test holds the default
port itself while reporting processes run the way the suite runs them, and proves that
nothing arrives there.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SINK_ENV
from tests.envkit import Env, clean_env

DEFAULT_PORT = 8125


@pytest.fixture
def default_port() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", DEFAULT_PORT))
    except OSError as error:
        sock.close()
        pytest.skip(f"127.0.0.1:{DEFAULT_PORT} is taken on this machine ({error}): cannot watch it")
    sock.settimeout(0.5)
    yield sock
    sock.close()


def _received(sock: socket.socket) -> list[bytes]:
    marker = b"test.marker:1|c"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(marker, ("127.0.0.1", DEFAULT_PORT))
    got: list[bytes] = []
    while True:
        data = sock.recv(65535)
        if data == marker:
            return got
        got.append(data)


def test_the_pytest_process_points_at_the_session_sink() -> None:
    for name, value in SINK_ENV.items():
        assert os.environ[name] == value
    assert SINK_ENV["PYTHON_POPCONTEST_STATSD_PORT"] != str(DEFAULT_PORT)
    assert clean_env()["PYTHON_POPCONTEST_STATSD_PORT"] == SINK_ENV["PYTHON_POPCONTEST_STATSD_PORT"]


def test_reporting_processes_never_reach_the_default_port(
    default_port: socket.socket, tmp_path: Path
) -> None:
    env = Env(tmp_path / "env")
    env.add_dist("watched", {"watched.py": ""})
    code = "import popularity_contest.reporter\nimport watched\n"
    done = env.run(code)  # as the suite runs them: no listener of its own
    assert (done.returncode, done.stderr) == (0, "")
    inherited = subprocess.run(  # a plain child of the pytest process, inheriting its env
        [str(env.python), "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert (inherited.returncode, inherited.stderr) == (0, "")
    # Importing a helper in the pytest process activates nothing.
    from popularity_contest.inprocess import runtime

    assert not runtime.is_active()
    assert _received(default_port) == []
