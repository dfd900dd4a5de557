"""Hand-made Python environments for tests: venvs, installed distributions, a UDP listener.

Building a venv with ``--without-pip`` takes a few tens of milliseconds, and a distribution
is a module plus a ``*.dist-info`` directory written by hand, so tests get real site
directories and real installed distributions without pip or the network. The project
itself is made importable in such a venv by a ``.pth`` pointing at this checkout.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import venv
from collections.abc import Mapping
from pathlib import Path

_SINK_VARIABLES = ("PYTHON_POPCONTEST_STATSD_HOST", "PYTHON_POPCONTEST_STATSD_PORT")
REPO = Path(__file__).resolve().parent.parent
PY_VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"


class Env:
    """A virtual environment made for one test module or session."""

    def __init__(self, root: Path, system_site_packages: bool = False) -> None:
        self.root = root
        venv.EnvBuilder(
            with_pip=False, system_site_packages=system_site_packages, symlinks=True
        ).create(root)
        self.python = root / "bin" / "python"
        self.site = root / "lib" / PY_VERSION / "site-packages"
        # This checkout, importable but not an installed distribution of the venv.
        (self.site / "_popcon_checkout.pth").write_text(f"{REPO}\n")

    def add_dist(
        self,
        name: str,
        files: Mapping[str, str],
        *,
        site: Path | None = None,
        direct_url: str | None = None,
        top_level: str | None = None,
        version: str = "1.0",
    ) -> Path:
        """Install a hand-made distribution ``name`` providing ``files`` (relative paths)."""
        return add_dist(
            site or self.site,
            name,
            files,
            direct_url=direct_url,
            top_level=top_level,
            version=version,
        )

    def run(
        self,
        code: str,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 60,
        args: tuple[str, ...] = (),
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), *args, "-c", code],
            env=clean_env(env),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def add_dist(
    site: Path,
    name: str,
    files: Mapping[str, str],
    *,
    direct_url: str | None = None,
    top_level: str | None = None,
    version: str = "1.0",
) -> Path:
    site.mkdir(parents=True, exist_ok=True)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    record = []
    for rel, text in files.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        record.append(f"{rel},,")
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text("envkit\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(direct_url)
        record.append(f"{info.name}/direct_url.json,,")
    if top_level is not None:
        (info / "top_level.txt").write_text(top_level)
    record += [f"{info.name}/{n},," for n in ("METADATA", "INSTALLER", "RECORD")]
    (info / "RECORD").write_text("\n".join(record) + "\n")
    return info


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment: no PYTHON* or reporter settings leak in from the caller."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_"))
    }
    # Keep the suite's sink (tests/conftest.py) unless the caller names its own listener.
    env.update({k: v for k, v in os.environ.items() if k in _SINK_VARIABLES})
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


class Listener:
    """A statsd stand-in: a UDP socket on 127.0.0.1 whose datagrams a thread collects."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.datagrams: list[bytes] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._markers = 0
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while True:
            try:
                data = self.sock.recv(65535)
            except OSError:
                return
            with self._lock:
                self.datagrams.append(data)
                self._arrived.notify_all()

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "PYTHON_POPCONTEST_STATSD_HOST": "127.0.0.1",
            "PYTHON_POPCONTEST_STATSD_PORT": str(self.port),
            **extra,
        }

    def lines(self, timeout: float = 10) -> list[str]:
        """Every line received so far.

        Loopback UDP is delivered into the receive queue when ``sendto`` returns, so once a
        sender has exited, a marker datagram sent now is queued after all of its datagrams:
        when the marker arrives, everything sent before it has been collected.
        """
        return self._received(timeout, forget=False)

    def drain(self, timeout: float = 10) -> list[str]:
        """Every line received since the last ``drain`` (or ``clear``), up to a marker sent
        now as in ``lines``; those lines are then forgotten."""
        return self._received(timeout, forget=True)

    def _received(self, timeout: float, forget: bool) -> list[str]:
        self._markers += 1
        marker = f"envkit.marker.{self._markers}".encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(marker, ("127.0.0.1", self.port))
        deadline = time.monotonic() + timeout
        with self._arrived:
            while marker not in self.datagrams:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("listener marker never arrived")
                self._arrived.wait(remaining)
            taken = list(self.datagrams)
            if forget:
                taken = taken[: taken.index(marker) + 1]
                del self.datagrams[: len(taken)]
            return [
                line
                for d in taken
                if not d.startswith(b"envkit.marker.")
                for line in d.decode().split("\n")
            ]

    def wait_for(self, line: str, timeout: float = 10) -> list[str]:
        """Lines received once ``line`` has arrived (fails after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                lines = [x for d in self.datagrams for x in d.decode().split("\n")]
                remaining = deadline - time.monotonic()
                if line in lines or remaining <= 0:
                    break
                self._arrived.wait(remaining)
        if line not in lines:
            raise AssertionError(f"{line!r} not received within {timeout}s; got {lines!r}")
        return lines

    def clear(self) -> None:
        with self._lock:
            self.datagrams.clear()

    def close(self) -> None:
        self.sock.close()


def execute(manager: object, *cells: str, timeout: float = 60.0) -> None:
    """Run ``cells`` one by one in the kernel of a started ``jupyter_client`` manager, each
    to an ``ok`` reply (fails on an error or after ``timeout`` seconds of silence)."""
    client = manager.client()  # type: ignore[attr-defined]
    client.start_channels()
    try:
        client.wait_for_ready(timeout=timeout)
        for code in cells:
            msg_id = client.execute(code)
            while True:
                reply = client.get_shell_msg(timeout=timeout)
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
            assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        client.stop_channels()
