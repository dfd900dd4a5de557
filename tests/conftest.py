"""Shared test helpers: system requirements that skip on a laptop but fail under CI."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator

import pytest

from tests.envkit import Listener

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# The suite never talks to a collector it did not start. Anything that reports without a
# listener of its own (the pytest process itself, should a test import the reporter; a
# subprocess started without explicit settings) sends to this sink, a UDP socket the
# session owns and never reads, instead of the default 127.0.0.1:8125.
SINK = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
SINK.bind(("127.0.0.1", 0))
SINK_ENV = {
    "PYTHON_POPCONTEST_STATSD_HOST": "127.0.0.1",
    "PYTHON_POPCONTEST_STATSD_PORT": str(SINK.getsockname()[1]),
}
os.environ.update(SINK_ENV)


def require(condition: bool, reason: str) -> None:
    """Skip (on a developer's machine) or fail (under CI=true) unless ``condition`` holds."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


def require_system(program: str, package: str) -> str:
    """Path of ``program``; skips or fails (under CI) naming the Debian package to install."""
    path = shutil.which(program)
    require(
        path is not None,
        f"{program} not found: install the Debian package '{package}' (make system-deps)",
    )
    assert path is not None
    return path


@pytest.fixture
def listener() -> Iterator[Listener]:
    """A statsd stand-in on 127.0.0.1 of the test's own (``tests.envkit.Listener``)."""
    listening = Listener()
    yield listening
    listening.close()
