"""The acceptance environment: built from PyPI once, cached, copied fresh for each use.

A virtual environment of the machine's Python holding a JupyterLab + data-science stack
(``STACK``, every version pinned by ``constraints.txt``: 150+ distributions), built at
``<cache>/env-<key>/env`` and then copied byte for byte to ``pristine/`` beside it. The key
hashes the constraints, the stack and the Python version, so a change to any of them builds
a new environment. A fresh environment is the pristine copy put back at the path it was
built at (scripts' ``#!`` lines name that path), so removing packages in one test never
leaks into another. ``<cache>`` is ``$POPCON_ACCEPTANCE_CACHE`` or ``.acceptance-cache/``
in the checkout (ignored by git).

Copies are hard links (``cp -al``): a byte copy of 1.2 GB took 35 to 140 s on a shared
2-core machine, links take seconds. That is safe because nothing the test runs rewrites an
installed file in place: pip removes by renaming and installs new files, Python replaces
bytecode atomically, and this module writes new files only. A manifest (file count, bytes,
newest modification time) recorded at build time is checked on reuse, and a pristine copy
that changed anyway is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CONSTRAINTS = HERE / "constraints.txt"
CACHE = Path(os.environ.get("POPCON_ACCEPTANCE_CACHE") or REPO / ".acceptance-cache")
TRUTH_MODULE = HERE / "truth" / "_popcon_acceptance_truth.py"
#: Sorts before every other ``.pth`` (``site`` runs them in sorted order): ``0`` < letters.
TRUTH_PTH = "000000-popcon-acceptance-truth.pth"
#: Sorts before ``00-popularity-contest.py`` in the same startup directory.
TRUTH_STARTUP = "00-000-popcon-acceptance-truth.py"
MIN_DISTRIBUTIONS = 150

#: What an image for data-science users of a hub installs; constraints.txt pins the rest.
STACK = (
    "jupyterlab",
    "nbconvert",
    "nbclient",
    "ipykernel",
    "ipywidgets",
    "numpy",
    "pandas",
    "matplotlib",
    "scipy",
    "scikit-learn",
    "seaborn",
    "statsmodels",
    "sympy",
    "networkx",
    "xarray",
    "dask",
    "toolz",
    "numexpr",
    "bokeh",
    "altair",
    "plotly",
    "pillow",
    "requests",
    "beautifulsoup4",
    "lxml",
    "pyyaml",
    "openpyxl",
    "sqlalchemy",
    "six",
    "tqdm",
    "click",
    "rich",
    "pytest",
    "black",
    "sphinx",
)


def log(message: str) -> None:
    """Progress on the terminal (the make targets run pytest with ``-s``)."""
    print(f"[acceptance {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def base_python() -> str:
    """The interpreter the test venv was made from: the machine's python3."""
    return str(getattr(sys, "_base_executable", sys.executable))


def quiet_env(**extra: str) -> dict[str, str]:
    """An environment for the harness's own commands in the env under test.

    Reporting is off (and pointed at a port nobody listens on, never the default 8125), no
    truth is recorded, and nothing of the caller's Python settings leaks in.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "VIRTUAL_ENV", "POPCON_ACCEPTANCE_TRUTH"))
    }
    env.update(
        PYTHON_POPCONTEST_DISABLE="1",
        PYTHON_POPCONTEST_STATSD_HOST="127.0.0.1",
        PYTHON_POPCONTEST_STATSD_PORT="9",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    env.update(extra)
    return env


def neutral_dir() -> Path:
    """An empty working directory: ``python -c`` puts the current one first on sys.path,
    and in the checkout that would import the source tree instead of the installed wheel."""
    path = CACHE / "cwd"
    path.mkdir(parents=True, exist_ok=True)
    return path


def run(args: list[str | Path], *, timeout: float = 1800, **kwargs: object) -> str:
    """Run a harness command; fail with its output if it fails. Returns stdout."""
    env = kwargs.pop("env", None) or quiet_env()
    kwargs.setdefault("cwd", neutral_dir())
    result = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
        **kwargs,  # type: ignore[call-overload]
    )
    if result.returncode != 0:
        raise AssertionError(
            f"command failed ({result.returncode}): {' '.join(map(str, args))}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{_pip_noise(result.stderr)[-4000:]}"
        )
    return result.stdout


def _pip_noise(text: str) -> str:
    # This machine's pip configuration names local indexes that warn for every package.
    return "\n".join(line for line in text.splitlines() if "is ignored: it is neither" not in line)


def cache_key(python: str) -> str:
    version = run([python, "-c", "import sys; print(sys.version)"]).strip()
    digest = hashlib.sha256()
    for part in (CONSTRAINTS.read_bytes(), "\n".join(STACK).encode(), version.encode()):
        digest.update(part)
        digest.update(b"\0")
    digest.update(platform.machine().encode())
    # Console scripts carry their interpreter's absolute path in their first line: a cache
    # copied or linked from elsewhere would run another environment's Python.
    digest.update(str(CACHE.resolve()).encode())
    return digest.hexdigest()[:16]


@dataclass
class BuiltEnv:
    """The cached environment; ``fresh()`` puts the pristine copy back at ``root``."""

    home: Path
    root: Path
    pristine: Path
    build_seconds: float
    distributions: int
    python_version: str
    reused: bool

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def site_packages(self) -> Path:
        code = "import sysconfig; print(sysconfig.get_path('purelib'))"
        return Path(run([self.python, "-c", code]).strip())

    def fresh(self) -> None:
        """Replace ``root`` with a byte-for-byte copy of the pristine environment."""
        started = time.monotonic()
        if self.root.exists():
            shutil.rmtree(self.root)
        run(["cp", "-al", self.pristine, self.root])
        log(f"fresh copy of the environment in {time.monotonic() - started:.1f} s")

    def pip(self, *args: str | Path, timeout: float = 1800) -> str:
        return run([self.python, "-m", "pip", *args], timeout=timeout)

    def install_popcon(self, wheel: Path) -> None:
        """popularity-contest from ``wheel``, non-editable, with the collector extra."""
        self.pip("install", "--quiet", "-c", CONSTRAINTS, f"{wheel}[collector]")
        where = run([self.python, "-c", "import popularity_contest as p; print(p.__file__)"])
        assert Path(where.strip()).is_relative_to(self.site_packages()), where

    def install_truth(self) -> None:
        """The independent recorder: its module and a ``.pth`` that sorts first, and an
        IPython startup file that sorts before popularity-contest's."""
        site = self.site_packages()
        _write_new(site / TRUTH_MODULE.name, TRUTH_MODULE.read_text())
        _write_new(site / TRUTH_PTH, "import _popcon_acceptance_truth\n")
        first = sorted(p.name for p in site.glob("*.pth"))
        assert first[0] == TRUTH_PTH, f"the truth .pth must sort first in {site}: {first}"
        startup = self.root / "etc" / "ipython" / "startup"
        startup.mkdir(parents=True, exist_ok=True)
        _write_new(
            startup / TRUTH_STARTUP, '__import__("_popcon_acceptance_truth").ipython_started()\n'
        )

    def popcon(self, *args: str | Path, timeout: float = 600) -> str:
        """``popularity-contest ARGS`` from the environment (what an operator types)."""
        return run([self.bin / "popularity-contest", *args], timeout=timeout)


def _write_new(path: Path, text: str) -> None:
    """A new file (never a write into an existing one, which may be a hard link)."""
    path.unlink(missing_ok=True)
    path.write_text(text)


def manifest(root: Path) -> list[int]:
    """[files, bytes, newest mtime in ns] of a tree: changes if anything in it was rewritten."""
    files = size = newest = 0
    for directory, _, names in os.walk(root):
        for name in names:
            info = os.lstat(os.path.join(directory, name))
            files += 1
            size += info.st_size
            newest = max(newest, info.st_mtime_ns)
    return [files, size, newest]


def build() -> BuiltEnv:
    """The cached environment, built from PyPI first if no cache matches."""
    python = base_python()
    home = CACHE / f"env-{cache_key(python)}"
    root, pristine, stamp = home / "env", home / "pristine", home / "stamp.json"
    version = run([python, "-c", "import platform; print(platform.python_version())"]).strip()
    recorded = json.loads(stamp.read_text()) if stamp.exists() else {}
    if pristine.exists() and recorded.get("manifest") != manifest(pristine):
        log(f"{pristine} changed since it was built: rebuilding")
    elif pristine.exists():
        log(
            f"reusing {home} ({recorded['distributions']} distributions, "
            f"built in {recorded['build_seconds']:.0f} s)"
        )
        return BuiltEnv(
            home, root, pristine, recorded["build_seconds"], recorded["distributions"],
            version, reused=True,
        )  # fmt: skip
    for stale in (root, pristine):
        if stale.exists():
            shutil.rmtree(stale)
    home.mkdir(parents=True, exist_ok=True)
    log(f"building {root} from PyPI ({len(STACK)} requirements pinned by {CONSTRAINTS.name})")
    started = time.monotonic()
    run([python, "-m", "venv", root])
    run(
        [root / "bin" / "python", "-m", "pip", "install", "--quiet", "--only-binary=:all:",
         "-c", CONSTRAINTS, *STACK],
    )  # fmt: skip
    build_seconds = time.monotonic() - started
    code = "import importlib.metadata as m; print(len({d.name for d in m.distributions()}))"
    count = int(run([root / "bin" / "python", "-c", code]).strip())
    assert count >= MIN_DISTRIBUTIONS, f"only {count} distributions in {root}"
    log(f"built {count} distributions in {build_seconds:.0f} s; keeping a pristine copy")
    run(["cp", "-al", root, pristine])
    stamp.write_text(
        json.dumps(
            {"distributions": count, "build_seconds": build_seconds, "python": version,
             "stack": list(STACK), "manifest": manifest(pristine)},
            indent=1,
        )
    )  # fmt: skip
    return BuiltEnv(home, root, pristine, build_seconds, count, version, reused=False)


def build_wheel(out: Path) -> Path:
    """popularity-contest's wheel from this checkout (``pip wheel --no-deps``)."""
    out.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", out, REPO])
    (wheel,) = out.glob("popularity_contest-*.whl")
    return wheel
