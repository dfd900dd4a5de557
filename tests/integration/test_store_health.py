"""The store tells the truth about itself: read-only files, a deleted store, a full disk.

Root can write read-only files, so ``serve`` runs as ``nobody`` (``setpriv``) in a
directory that user owns; the full disk is a small tmpfs mounted in a private mount
namespace (``unshare -m``), so nothing outside the test sees it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.collectorkit import Collector
from tests.conftest import require

NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
LINE = b"python_popcon.imported_package.numpy:1|c"
KEY = 'python_popcon_imported_package_total{namespace="",package="numpy"}'


def metric(collector: Collector, sample: str) -> float | None:
    for line in collector.read("/metrics").splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return None


def health(collector: Collector) -> tuple[int, dict[str, object]]:
    status, body = collector.get("/healthz")
    document: dict[str, object] = json.loads(body)
    return status, document


@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    require(os.geteuid() == 0, "needs root to run serve as another user (setpriv)")
    require(shutil.which("setpriv") is not None, "setpriv not found (Debian util-linux)")
    top = Path(tempfile.mkdtemp(prefix="popcon-health-", dir="/tmp"))
    top.chmod(0o755)
    store = top / "store"
    store.mkdir()
    shutil.chown(store, "nobody", "nogroup")
    try:
        yield store
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.needs_root
def test_read_only_store_files_are_unhealthy_counts_wait_and_recover(nobody_dir: Path) -> None:
    db = nobody_dir / "popcon.sqlite3"
    log = nobody_dir.parent / "serve.log"
    with Collector(db, wrapper=NOBODY, log=log) as first:
        first.send(LINE)
        first.wait_until(lambda: health(first)[1].get("pending_series") == 0, what="a flush")
        assert first.stop() == 0
    for path in nobody_dir.iterdir():
        path.chmod(0o444)
    with Collector(db, wrapper=NOBODY, log=log) as collector:
        collector.send(LINE, LINE)
        collector.wait_until(lambda: health(collector)[0] == 503, what="an unhealthy /healthz")
        document = health(collector)[1]
        assert "readonly" in str(document["problem"])
        assert metric(collector, KEY) == 3.0  # received counts are kept (and exposed)
        assert metric(collector, "popcon_collector_store_writable") == 0.0
        assert "cannot write the store, counts kept in memory" in collector.text()
        for path in nobody_dir.iterdir():
            path.chmod(0o644)
        collector.wait_until(lambda: health(collector)[0] == 200, what="recovery")
        assert "store writable again" in collector.text()
        assert collector.stop() == 0
    with Collector(db, log=log) as again:
        assert json.loads(again.read("/api/v1/packages?start=0"))["totals"][0]["count"] == 3


@pytest.mark.needs_root
def test_stopping_with_counts_that_cannot_be_written_exits_non_zero(nobody_dir: Path) -> None:
    db = nobody_dir / "popcon.sqlite3"
    log = nobody_dir.parent / "serve.log"
    with Collector(db, wrapper=NOBODY, log=log) as first:
        assert first.stop() == 0
    for path in nobody_dir.iterdir():
        path.chmod(0o444)
    with Collector(db, wrapper=NOBODY, log=log) as collector:
        collector.send(LINE)
        collector.wait_until(lambda: metric(collector, KEY) == 1.0, what="the count")
        assert collector.stop() == 1
        assert "1 counts in 1 series could not be written" in collector.text()
        assert "Traceback" not in collector.text()


def test_a_deleted_store_is_detected_and_not_recreated(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    db = directory / "popcon.sqlite3"
    with Collector(db, log=tmp_path / "serve.log") as collector:
        collector.send(LINE)
        collector.wait_until(lambda: health(collector)[1].get("pending_series") == 0, what="flush")
        shutil.rmtree(directory)
        collector.wait_until(lambda: health(collector)[0] == 503, what="an unhealthy /healthz")
        assert "deleted while in use" in str(health(collector)[1]["problem"])
        collector.send(LINE)
        collector.wait_until(lambda: metric(collector, KEY) == 2.0, what="the count in memory")
        assert collector.stop(signal.SIGTERM) == 1
        assert "could not be written" in collector.text()
    assert not directory.exists()  # never silently recreated empty


@pytest.mark.needs_root
def test_a_full_disk_is_unhealthy_and_the_stop_reports_the_loss(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "needs root for a private mount namespace (unshare -m)")
    require(shutil.which("unshare") is not None, "unshare not found (Debian util-linux)")
    mount = tmp_path / "small"
    mount.mkdir()
    db = mount / "popcon.sqlite3"
    script = f'mount -t tmpfs -o size=256k tmpfs "{mount}" && exec "$@"'  # private to this process
    wrapper = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh"]
    with Collector(db, wrapper=wrapper, log=tmp_path / "serve.log") as collector:
        for batch in range(40):
            lines = [
                b"python_popcon.imported_package.p%d_%d_%s:1|c" % (batch, i, b"x" * 150)
                for i in range(100)
            ]
            for start in range(0, len(lines), 20):
                collector.send(b"\n".join(lines[start : start + 20]))
            if health(collector)[0] == 503:
                break
        collector.wait_until(lambda: health(collector)[0] == 503, what="a full disk")
        assert "full" in str(health(collector)[1]["problem"])
        assert collector.stop() == 1
        assert "could not be written" in collector.text()
    assert not any(mount.iterdir())  # the tmpfs was private to the collector
