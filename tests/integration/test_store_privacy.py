"""The store holds raw counts below the privacy threshold: only the collector's user reads it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.collectorkit import Collector

LINE = b"python_popcon.imported_package.numpy:1|c"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_serve_creates_a_private_directory_and_private_files(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, which would give 0755 and 0644
    try:
        store = tmp_path / "shared" / "popularity-contest" / "popcon.sqlite3"
        with Collector(store, "--flush-interval", "0.05", log=tmp_path / "serve.log") as c:
            c.send(LINE)
            c.wait_until(lambda: 'package="numpy"} 1.0' in c.read("/metrics"), what="the counter")
            c.wait_until(
                lambda: (
                    store.with_name(store.name + "-wal").exists()
                    and store.with_name(store.name + "-shm").exists()
                ),
                what="the WAL files",
            )
            files = {p.name: mode(p) for p in store.parent.iterdir()}
            assert c.stop() == 0
    finally:
        os.umask(old)
    assert mode(store.parent) == 0o700
    assert files == {
        "popcon.sqlite3": 0o600,
        "popcon.sqlite3-wal": 0o600,
        "popcon.sqlite3-shm": 0o600,
    }
    assert mode(store) == 0o600  # still, after the collector checkpointed and stopped


def test_an_existing_directory_and_store_keep_their_modes(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    store = shared / "popcon.sqlite3"
    with Collector(store, log=tmp_path / "first.log") as first:
        assert first.stop() == 0
    store.chmod(0o640)  # an operator widened it on purpose (a group of admins)
    with Collector(store, log=tmp_path / "second.log") as second:
        assert second.stop() == 0
    assert mode(shared) == 0o755
    assert mode(store) == 0o640
