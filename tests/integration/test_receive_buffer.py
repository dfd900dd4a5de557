"""`serve` run as root gets the statsd receive buffer it asks for, above net.core.rmem_max."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from popularity_contest.collector.receiver import LINUX_SO_RCVBUFFORCE, rcvbufforce_option
from tests.collectorkit import Collector

RMEM_MAX = Path("/proc/sys/net/core/rmem_max")


def _may_force() -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.setsockopt(socket.SOL_SOCKET, LINUX_SO_RCVBUFFORCE, 1 << 20)
        except PermissionError:
            return False
    return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_RCVBUFFORCE is Linux's")
def test_the_force_option_is_known_on_linux() -> None:
    # CPython's socket module does not export it: without the constant, root was clamped.
    assert rcvbufforce_option() == LINUX_SO_RCVBUFFORCE


@pytest.mark.skipif(not RMEM_MAX.exists(), reason="no /proc/sys/net/core/rmem_max (not Linux)")
def test_root_gets_a_buffer_above_rmem_max(tmp_path: Path) -> None:
    if not _may_force():
        pytest.skip("SO_RCVBUFFORCE needs root or CAP_NET_ADMIN")
    wanted = 2 * int(RMEM_MAX.read_text()) + 4096  # more than the cap, whatever it is
    with Collector(tmp_path / "popcon.sqlite3", "--rcvbuf", str(wanted)) as collector:
        log = collector.text()
        assert collector.stop() == 0
    assert f"statsd receive buffer: {wanted} bytes" in log, log
    assert "not the" not in log
