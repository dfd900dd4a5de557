"""``popularity-contest demo``: the whole embedded pipeline on this machine, for real.

It starts ``popularity-contest serve`` on free loopback ports with a throw-away store, runs
a dozen real Python processes with the reporter active (as two pretend hubs), each importing
some of the packages installed here, waits until the collector has stored every report,
and prints what an operator would see: the counts per hub, ``/metrics`` and the page URL.

Then, on a terminal, it keeps the collector (and so the page) up until Ctrl-C; without a
terminal (CI, a pipe) or with ``--no-wait`` it stops at once. Either way it stops the
collector and removes its temporary store before it returns.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

# Packages the project's own installation brings along; the demo uses those present.
# (``make demo`` installs only the collector extra: yaml, prometheus_client, packaging, plotly.)
CANDIDATES = (
    "yaml",
    "statsd",
    "prometheus_client",
    "pygments",
    "traitlets",
    "IPython",
    "packaging",
    "plotly",
)
HUBS = {
    "physics": [(0, 1), (0, 1, 2), (0,), (1, 3), (0, 3), (2,)],
    "biology": [(0,), (2, 4), (0, 4), (5,), (0, 2)],
}
READY_TIMEOUT = 20.0


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback URL
        body: bytes = response.read()
        return body


def _wait(predicate: object, what: str, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if callable(predicate) and predicate():
                return
        except (OSError, urllib.error.URLError, ValueError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def _should_wait(args: argparse.Namespace) -> bool:
    """``--wait``/``--no-wait`` if given, else wait only when a person is at a terminal."""
    if args.wait is not None:
        return bool(args.wait)
    return sys.stdin.isatty() and sys.stdout.isatty()


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


class _TerminatedError(Exception):
    """SIGTERM or SIGHUP arrived: unwind through the same cleanup as Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


#: The signals that stop the demo like Ctrl-C does (a service manager, a closed terminal).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _raise_terminated(signum: int, _frame: object) -> None:
    raise _TerminatedError(signum)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``popularity-contest demo``: 0 when the counts were shown.

    SIGTERM and SIGHUP stop it like Ctrl-C (the collector stopped, the temporary store
    removed); it then returns 128 + the signal's number. The previous handlers are
    restored before it returns.
    """
    previous = {signum: signal.signal(signum, _raise_terminated) for signum in STOP_SIGNALS}
    try:
        return _run(args)
    except _TerminatedError as stop:
        return 128 + stop.signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run(args: argparse.Namespace) -> int:
    available = [name for name in CANDIDATES if importlib.util.find_spec(name) is not None]
    if len(available) < 2:
        print(
            "demo: the collector extra is not installed (pip install 'popularity-contest"
            "[collector]')",
            file=sys.stderr,
        )
        return 1
    statsd_port, http_port = _free_port(socket.SOCK_DGRAM), _free_port(socket.SOCK_STREAM)
    base = f"http://127.0.0.1:{http_port}"
    scratch = Path(tempfile.mkdtemp(prefix="popcon-demo-"))
    db = scratch / "popcon.sqlite3"
    env = {**os.environ, "PYTHON_POPCONTEST_DISABLE": "1"}
    print(f"demo: starting the collector: statsd 127.0.0.1:{statsd_port}, http {base}", flush=True)
    server: subprocess.Popen[bytes] | None = None
    try:
        server = _start_server(statsd_port, http_port, db, env)
        return _show(args, server, base, statsd_port, available, db)
    except (RuntimeError, subprocess.CalledProcessError) as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            _stop(server)
        shutil.rmtree(scratch, ignore_errors=True)
        print(f"demo: stopped the collector, removed {scratch}", flush=True)


def _start_server(
    statsd_port: int, http_port: int, db: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "popularity_contest",
            "serve",
            "--statsd",
            f"127.0.0.1:{statsd_port}",
            "--http",
            f"127.0.0.1:{http_port}",
            "--db",
            str(db),
        ],
        env=env,
    )


def _show(  # noqa: PLR0917 - private helper, one call site
    args: argparse.Namespace,
    server: subprocess.Popen[bytes],
    base: str,
    statsd_port: int,
    available: list[str],
    db: Path,
) -> int:
    """Run the instrumented processes, print the counts, then wait if asked."""
    _wait(lambda: _get(base + "/healthz"), "the collector to start")
    processes = 0
    for hub, runs in HUBS.items():
        for picks in runs:
            names = [available[i % len(available)] for i in picks]
            code = "import popularity_contest.reporter\n" + "".join(
                f"import {name}\n" for name in names
            )
            child_env = {
                **os.environ,
                "PYTHON_POPCONTEST_STATSD_HOST": "127.0.0.1",
                "PYTHON_POPCONTEST_STATSD_PORT": str(statsd_port),
                "PYTHON_POPCONTEST_STATSD_PREFIX": f"python_popcon.hub.{hub}.imported_package",
            }
            child_env.pop("PYTHON_POPCONTEST_DISABLE", None)
            subprocess.run(  # noqa: S603 - this interpreter, our own code
                [sys.executable, "-c", code], env=child_env, check=True
            )
            processes += 1
            print(f"demo: hub {hub:8} ran python -c 'import {', '.join(names)}'")

    def stored() -> bool:
        doc = json.loads(_get(base + "/api/v1/packages?metric=processes_reported"))
        return sum(int(row["count"]) for row in doc["totals"]) >= processes

    _wait(stored, "the collector to store every report")
    _print_counts(base, db)
    print(f"\nPrometheus scrapes {base}/metrics; people open {base}/")
    if _should_wait(args):
        print(f"\ndemo: the page is up at {base}/ -- press Ctrl-C to stop", flush=True)
        try:
            server.wait()
        except KeyboardInterrupt:
            print()  # after the terminal's ^C
        else:
            print("demo: the collector stopped on its own", file=sys.stderr)
            return 1
    return 0


def _print_counts(base: str, db: Path) -> None:
    print("\n$ popularity-contest report --by hub --since 1d", flush=True)
    subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "popularity_contest",
            "report",
            "--db",
            str(db),
            "--by",
            "hub",
            "--since",
            "1d",
        ],
        check=True,
    )
    metrics = _get(base + "/metrics").decode()
    lines = [line for line in metrics.splitlines() if line.startswith("python_popcon_")]
    print(f"\n$ curl {base}/metrics   (first lines)")
    for line in lines[:6]:
        print("  " + line)
