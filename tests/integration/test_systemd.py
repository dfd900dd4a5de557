"""The shipped systemd unit: ``systemd-analyze`` accepts it, and its command runs as its user.

systemd itself does not run on these machines (containers, CI), but ``systemd-analyze verify``
and ``security --offline`` read unit files without it. What systemd would do at start is
then done by hand: the ``ExecStart`` line (parsed from the unit, only the interpreter's path
swapped for this test's) runs under ``setpriv`` as ``nobody`` without privileges, in a
minimal environment with ``STATE_DIRECTORY`` pointing at a directory that user owns, with
the addresses set as the settings file would set them.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from popularity_contest.collector.store import Store
from tests import systemdkit
from tests.collectorkit import free_port, stop_process, wait_listening, wait_until
from tests.conftest import require, require_system

# Overall exposure (0 = locked down, 10 = unprotected) that `systemd-analyze security` may
# report; the unit scores 1.2 with systemd 252.
MAX_EXPOSURE = 2.0


def unit_for_this_machine(directory: Path) -> Path:
    """The unit with its interpreter replaced by one that exists here (verify checks it)."""
    text = systemdkit.UNIT.read_text()
    assert systemdkit.UNIT_PYTHON in text
    copy = directory / systemdkit.UNIT.name
    copy.write_text(text.replace(systemdkit.UNIT_PYTHON, sys.executable))
    return copy


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    program = require_system("systemd-analyze", "systemd")
    return subprocess.run([program, *args], capture_output=True, text=True, timeout=60, check=False)


def test_systemd_analyze_verify_accepts_the_unit_without_a_warning(tmp_path: Path) -> None:
    unit = unit_for_this_machine(tmp_path)
    done = analyze("verify", str(unit))
    assert (done.returncode, done.stdout + done.stderr) == (0, "")

    # The same check notices a mistake (so silence above means something).
    broken = tmp_path / "broken" / unit.name
    broken.parent.mkdir()
    broken.write_text(unit.read_text().replace("ProtectHome=", "ProtectHom="))
    done = analyze("verify", str(broken))
    assert "Unknown key 'ProtectHom'" in done.stdout + done.stderr


def test_the_unit_is_hardened(tmp_path: Path) -> None:
    unit = unit_for_this_machine(tmp_path)
    done = analyze("security", "--offline=yes", "--no-pager", str(unit))
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, done.stdout


@pytest.fixture
def state_directory() -> Iterator[Path]:
    """What StateDirectory= makes: a 0700 directory owned by the service's user (nobody)."""
    require(os.geteuid() == 0, "needs root to run a command as another user")
    nobody = pwd.getpwnam("nobody")
    # Not under pytest's tmp_path: its parents are private to root.
    path = Path(tempfile.mkdtemp(prefix="popcon-state-"))
    os.chown(path, nobody.pw_uid, nobody.pw_gid)
    path.chmod(0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def as_nobody() -> list[str]:
    setpriv = require_system("setpriv", "util-linux")
    command = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--no-new-privs"]
    probe = subprocess.run(
        [*command, sys.executable, "-c", "import popularity_contest.collector.server"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    require(
        probe.returncode == 0,
        f"user nobody cannot run this test's interpreter {sys.executable}: {probe.stderr}",
    )
    return command


@pytest.mark.needs_root
def test_the_units_command_runs_as_an_unprivileged_user_with_its_store_in_the_state_directory(
    state_directory: Path, tmp_path: Path
) -> None:
    prefix = as_nobody()
    argv = systemdkit.exec_start()
    assert argv[0] == systemdkit.UNIT_PYTHON
    argv[0] = sys.executable
    statsd_port, http_port = free_port(socket.SOCK_DGRAM), free_port()
    settings = {
        **systemdkit.read_env_file(),
        "PYTHON_POPCONTEST_SERVE_STATSD": f"127.0.0.1:{statsd_port}",
        "PYTHON_POPCONTEST_SERVE_HTTP": f"127.0.0.1:{http_port}",
    }
    # Roughly what systemd gives a DynamicUser service: no HOME of its own, no XDG variables.
    environment = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "STATE_DIRECTORY": str(state_directory),
        **settings,
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*prefix, *argv], cwd="/", env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        text = wait_listening(process, log)
        assert f"listening statsd=127.0.0.1:{statsd_port} http=127.0.0.1:{http_port}" in text
        store = state_directory / "popcon.sqlite3"
        assert f"store: {store}" in text

        url = f"http://127.0.0.1:{http_port}"
        with urllib.request.urlopen(url + "/healthz", timeout=10) as reply:  # noqa: S310
            assert (reply.status, json.loads(reply.read())["status"]) == (200, "ok")

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"python_popcon.imported_package.numpy:1|c", ("127.0.0.1", statsd_port))

        def received() -> bool | None:
            with urllib.request.urlopen(url + "/metrics", timeout=10) as reply:  # noqa: S310
                metrics = reply.read().decode()
            return True if "popcon_collector_lines_received_total 1.0" in metrics else None

        wait_until(received, "the datagram to be counted")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, log.read_text()
    finally:
        stop_process(process)

    assert store.stat().st_uid == pwd.getpwnam("nobody").pw_uid
    opened = Store.open(store, create=False)
    try:
        totals = {t.labels.get("package"): t.value for t in opened.series_totals()}
    finally:
        opened.close()
    assert totals.get("numpy") == 1.0
