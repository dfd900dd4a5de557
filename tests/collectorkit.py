"""Servers for tests: ``popularity-contest serve``, a plain HTTP server, stopping any cleanly.

``Collector`` starts ``python -m popularity_contest serve`` on loopback ports (OS-assigned
unless given, so it can restart on the same ones), logs its output to a file and is ready
once it logs ``listening statsd=... http=...``: that line comes after both sockets are
bound, so from then on datagrams are queued and HTTP connections accepted.
``http_server`` serves fixed answers from a thread of the test (something else on a port).
"""

from __future__ import annotations

import http.server
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from tests.envkit import REPO, clean_env

T = TypeVar("T")

LISTENING = re.compile(r"listening statsd=(?:127\.0\.0\.1:(\d+)|off) http=127\.0\.0\.1:(\d+)")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port the OS just handed out on 127.0.0.1 (TCP or UDP), free again now."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(check: Callable[[], T | None], what: str, timeout: float = 20) -> T:
    """Poll ``check`` until it returns something other than None; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def stop_process(process: subprocess.Popen[Any], timeout: float = 10) -> int:
    """SIGTERM, then SIGKILL if ``process`` has not exited after ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def wait_listening(process: subprocess.Popen[Any], log: Path, timeout: float = 20) -> str:
    """The text of ``log`` once ``serve`` (run as ``process``, logging to ``log``) logged its
    listening line; fails with the log when it exits first or after ``timeout`` seconds."""

    def listening() -> str | None:
        text = log.read_text(errors="replace")
        if process.poll() is not None:
            raise AssertionError(f"serve exited {process.returncode}:\n{text}")
        return text if "listening statsd=" in text else None

    return wait_until(listening, "serve's listening line", timeout)


@contextmanager
def http_server(answer: Callable[[str], tuple[int, str, bytes]]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (a free port) answering each GET of a path with
    ``answer(path)`` = (status, Content-Type, body), in a thread; yields its URL, then stops."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, content_type, data = answer(self.path)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class Collector:
    """One ``popularity-contest serve`` subprocess; a context manager that stops it.

    ``extra`` is appended to the command line, ``env`` to a clean environment; the log
    (stdout and stderr) is appended to ``log``, by default next to the store. ``wrapper``
    goes before the interpreter (``setpriv ...`` to run it as another user).
    """

    def __init__(
        self,
        db: Path,
        *extra: str,
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
        statsd_port: int = 0,
        http_port: int = 0,
        timeout: float = 20,
        wrapper: Sequence[str] = (),
    ) -> None:
        self.db = db
        self.log = log or db.with_name(db.name + ".log")
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        self._log = self.log.open("ab")
        command = [sys.executable, "-m", "popularity_contest", "serve", "--db", str(db)]
        command += ["--statsd", f"127.0.0.1:{statsd_port}", "--http", f"127.0.0.1:{http_port}"]
        environ = clean_env(env)
        if wrapper:
            # Run as another user, who cannot write coverage's data files into the checkout.
            environ.pop("COVERAGE_PROCESS_CONFIG", None)
        self.process = subprocess.Popen(
            [*wrapper, *command, *extra],
            cwd=REPO,
            env=environ,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            ports = wait_until(self._listening, "the collector's listening line", timeout)
        except BaseException:
            self.close()
            raise
        self.statsd_port, self.http_port = ports
        self.address = f"127.0.0.1:{self.http_port}"
        self.url = f"http://{self.address}"

    def _listening(self) -> tuple[int, int] | None:
        found = LISTENING.search(self.text())
        if found is None:
            if self.process.poll() is not None:
                raise AssertionError(f"collector exited:\n{self.text()}")
            return None
        return int(found.group(1) or 0), int(found.group(2))

    def text(self) -> str:
        """What this run logged so far (an earlier run's log in the same file excluded)."""
        with self.log.open("rb") as file:
            file.seek(self._offset)
            return file.read().decode(errors="replace")

    def send(self, *datagrams: bytes) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for datagram in datagrams:
                sock.sendto(datagram, ("127.0.0.1", self.statsd_port))

    def get(self, path: str) -> tuple[int, str]:
        """(status, body); HTTP errors are answers too."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:  # noqa: S310
                return response.status, response.read().decode("utf-8")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8")

    def read(self, path: str) -> str:
        """The body of a 200 answer to ``path``; anything else fails."""
        status, body = self.get(path)
        assert status == 200, (path, status, body)
        return body

    def wait_until(
        self, predicate: Callable[[], bool], timeout: float = 15, what: str = "condition"
    ) -> None:
        """Poll ``predicate``; fail if the collector dies or ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while not predicate():
            assert self.process.poll() is None, "collector died:\n" + self.text()
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Send ``sig`` and return the exit code; fails if it has not exited after ``timeout``."""
        self.process.send_signal(sig)
        code = self.process.wait(timeout)
        self._log.close()
        return code

    def close(self) -> None:
        """Stop it if it still runs (SIGTERM, SIGKILL after 10 s)."""
        stop_process(self.process)
        self._log.close()

    def __enter__(self) -> Collector:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
