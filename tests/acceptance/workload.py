"""What users of the environment do, run as they would, and a collector to count it.

``Collector`` is the environment's own ``popularity-contest serve`` on free loopback ports.
``run_workload`` runs the workload (notebooks through real kernels, scripts, a pool with
fork and spawn, console commands, ``ipython -c``, ``jupyter nbconvert``, SIGKILLed kernels)
with the reporter pointed at that collector and the truth recorder on, and returns one
``Outcome`` per step. ``check_jupyterlab`` starts JupyterLab headless and exports a
notebook to HTML through its HTTP API.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests.acceptance.envbuild import HERE, BuiltEnv, log, quiet_env
from tests.collectorkit import free_port, stop_process
from tests.collectorkit import wait_until as wait_for

WORKLOAD = HERE / "workload"
CHECK_LINE = b"python_popcon.check:1|c"
CHECK_METRIC = "python_popcon_check_total"
#: Terminal colours (IPython tracebacks in nbclient errors) make failure messages unreadable.
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")
    except OSError:
        return 0, ""


class Collector:
    """``popularity-contest serve`` from the environment, on free 127.0.0.1 ports."""

    def __init__(self, env: BuiltEnv, db: Path) -> None:
        self.db = db
        self.statsd_port = free_port(socket.SOCK_DGRAM)
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.log = db.with_suffix(".log")
        self.sentinels = 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [env.bin / "popularity-contest", "serve", "--db", db,
                 "--statsd", f"127.0.0.1:{self.statsd_port}",
                 "--http", f"127.0.0.1:{self.http_port}"],
                env=quiet_env(), stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            wait_for(self._healthy, "the collector's /healthz", timeout=60)
            self.sync()
        except BaseException:
            self.stop()
            raise

    def _healthy(self) -> bool | None:
        if self.process.poll() is not None:
            raise AssertionError(f"collector exited:\n{self.log.read_text()[-3000:]}")
        return True if http_get(self.url + "/healthz")[0] == 200 else None

    def api(self, path: str) -> dict[str, object]:
        status, body = http_get(self.url + path)
        assert status == 200, (path, status, body)
        document: dict[str, object] = json.loads(body)
        return document

    def totals(self, metric: str) -> Counter[str]:
        """Package (or '') -> count over the default window, from ``/api/v1/packages``."""
        rows = self.api(f"/api/v1/packages?metric={metric}")["totals"]
        counts: Counter[str] = Counter()
        for row in rows:  # type: ignore[attr-defined]
            counts[row.get("package", "")] += row["count"]
        return counts

    def sync(self) -> None:
        """Send a test counter after everything else and wait until the store has it.

        One socket receives in order and the store commits what was received in one
        transaction, so once the counter is stored every earlier line is too.
        """
        self.sentinels += 1
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(CHECK_LINE, ("127.0.0.1", self.statsd_port))

        def stored() -> bool | None:
            self._healthy()
            return True if sum(self.totals(CHECK_METRIC).values()) >= self.sentinels else None

        wait_for(stored, "the collector to store the test counter", timeout=30)

    def stop(self) -> None:
        stop_process(self.process, timeout=20)


@dataclass
class Outcome:
    name: str
    argv: list[str]
    returncode: int
    seconds: float
    output: str

    @property
    def failed(self) -> bool:
        return self.returncode != 0

    def describe(self) -> str:
        return (
            f"{self.name}: exit {self.returncode} after {self.seconds:.1f} s: "
            f"{' '.join(self.argv)}\n{self.output[-3000:]}"
        )


def workload_environ(
    env: BuiltEnv, run_dir: Path, statsd_port: int, truth: Path | None
) -> dict[str, str]:
    """What a user's process gets: the environment's bin first, a home of its own, the
    reporter pointed at the test collector (never the default port)."""
    environ = quiet_env()
    del environ["PYTHON_POPCONTEST_DISABLE"]
    home = run_dir / "home"
    home.mkdir(parents=True, exist_ok=True)
    environ.update(
        HOME=str(home),
        PATH=f"{env.bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        MPLCONFIGDIR=str(env.home / "mplconfig"),
        JUPYTER_PLATFORM_DIRS="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        PYTHON_POPCONTEST_STATSD_HOST="127.0.0.1",
        PYTHON_POPCONTEST_STATSD_PORT=str(statsd_port),
        # Direct imports (opt-in) on: their counts are checked against what user code imports.
        PYTHON_POPCONTEST_COUNT_DIRECT="1",
    )
    if truth is not None:
        environ["POPCON_ACCEPTANCE_TRUTH_DIR"] = str(truth)
    return environ


def steps(env: BuiltEnv, work: Path) -> list[tuple[str, list[str]]]:
    python = str(env.python)
    notebooks = sorted(str(p) for p in (work / "notebooks").glob("*.ipynb"))
    return [
        ("notebooks (nbclient, one kernel each)", [python, "run_notebooks.py", "out", *notebooks]),
        ("script numpy", [python, "analysis_numpy.py"]),
        ("script pandas+scipy in a function", [python, "stats_frames.py"]),
        ("python -c", [python, "-c", "import yaml, requests; assert yaml.safe_load('a: 1')"]),
        ("multiprocessing pool fork+spawn", [python, "pool_fork_spawn.py"]),
        ("console command pygmentize", [str(env.bin / "pygmentize"), "-l", "python", "-f", "html",
                                        "-o", "out/analysis.html", "analysis_numpy.py"]),
        ("console command black", [str(env.bin / "black"), "--version"]),
        ("ipython -c", [str(env.bin / "ipython"), "-c", "import sympy; print(sympy.sqrt(8))"]),
        ("jupyter nbconvert --to html", [str(env.bin / "jupyter"), "nbconvert", "--to", "html",
                                         "--output-dir", "out/html", "out/pandas_numpy.ipynb"]),
        ("kernels SIGKILLed after an import", [python, "kill_kernels.py"]),
    ]  # fmt: skip


def run_workload(
    env: BuiltEnv, run_dir: Path, statsd_port: int, truth: Path | None
) -> list[Outcome]:
    """Every step in ``run_dir/work`` (a copy of ``workload/``), then wait until every
    process the recorder saw has ended (a resource tracker outlives its parent briefly)."""
    work = run_dir / "work"
    shutil.copytree(WORKLOAD, work)
    (work / "out").mkdir()
    environ = workload_environ(env, run_dir, statsd_port, truth)
    outcomes = []
    for name, argv in steps(env, work):
        started = time.monotonic()
        try:
            result = subprocess.run(
                argv, cwd=work, env=environ, capture_output=True, text=True, timeout=600,
                check=False, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            code, output = result.returncode, ANSI.sub("", result.stdout + result.stderr)
        except subprocess.TimeoutExpired as error:
            code, output = -1, f"timed out: {error}"
        outcome = Outcome(name, argv, code, time.monotonic() - started, output)
        log(f"  {'FAILED' if outcome.failed else 'ok'} {name} ({outcome.seconds:.1f} s)")
        outcomes.append(outcome)
    if truth is not None:
        wait_for(lambda: None if _alive(truth) else True, "workload processes to end", 60)
    return outcomes


def _alive(truth: Path) -> list[int]:
    alive = []
    for path in truth.glob("*.log"):
        pid = int(path.name.split("-")[0])
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and f"POPCON_ACCEPTANCE_TRUTH_DIR={truth}".encode() in _environ(pid):
            alive.append(pid)
    return alive


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def check_jupyterlab(env: BuiltEnv, run_dir: Path, statsd_port: int, notebook: Path) -> list[str]:
    """Start JupyterLab headless, export ``notebook`` (under ``run_dir/work``) to HTML via
    ``/nbconvert/html/<path>``; the problems found (empty: it works)."""
    port, token = free_port(), secrets.token_hex(16)
    environ = workload_environ(env, run_dir, statsd_port, None)
    root = run_dir / "work"
    log_path = run_dir / "jupyterlab.log"
    with log_path.open("ab") as out:
        server = subprocess.Popen(
            [env.bin / "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
             *(["--allow-root"] if os.geteuid() == 0 else [])],
            cwd=root, env=environ, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"token {token}"}
    problems = []
    try:

        def up() -> bool | None:
            if server.poll() is not None:
                return False
            return True if http_get(base + "/api/status", auth)[0] == 200 else None

        if not wait_for(up, "JupyterLab's /api/status", timeout=120):
            return [f"jupyter lab exited with {server.returncode}:\n{log_path.read_text()[-3000:]}"]
        status, body = http_get(base + "/lab", auth)
        if status != 200 or "<html" not in body.lower():
            problems.append(f"GET /lab: HTTP {status}: {body[:300]}")
        relative = notebook.relative_to(root).as_posix()
        status, body = http_get(f"{base}/nbconvert/html/{relative}?download=false", auth)
        if status != 200 or "<html" not in body.lower():
            text = " ".join(re.sub(r"<[^>]+>", " ", body).split())
            problems.append(f"GET /nbconvert/html/{relative}: HTTP {status}: ...{text[-800:]}")
        status, body = http_get(base + "/api/kernelspecs", auth)
        if status != 200 or "python3" not in body:
            problems.append(f"GET /api/kernelspecs: HTTP {status}: {body[:300]}")
    finally:
        stop_process(server, timeout=30)
    return problems
