"""Build (or reuse) the environment the reporter benchmark runs in.

A virtual environment under ``benchmarks/.env/venv`` holding a data-science / Jupyter stack
from PyPI (150+ installed distributions, the size of a real shared image), with:

* popularity-contest from this checkout, installed *non-editable* and rebuilt on every run,
  so the benchmark measures the code as it is now, imported from site-packages the way
  users import it (and with its bytecode compiled, as pip does at install time);
* popularity-contest 0.4.1 from PyPI in a separate directory (``.env/upstream-0.4.1``),
  because it has the same import name: it is only used with that directory first on
  ``PYTHONPATH``.

The stack is installed once and reused while the requirement list below is unchanged (a
stamp file records it). ``benchmarks/.env*/`` is ignored by git.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
ENV_DIR = BENCH_DIR / ".env"
VENV = ENV_DIR / "venv"
UPSTREAM_DIR = ENV_DIR / "upstream-0.4.1"
# An empty working directory: `python -c` puts the current directory first on sys.path, and
# from the checkout that would import the source tree instead of the installed package.
WORK_DIR = ENV_DIR / "cwd"
STAMP = ENV_DIR / "stack.json"

MIN_DISTRIBUTIONS = 150
UPSTREAM_REQUIREMENT = "popularity-contest==0.4.1"

#: A shared data-science / Jupyter image, roughly. `statsd` is our runtime dependency;
#: `importlib-metadata` is upstream 0.4.1's (it is installed with --no-deps).
STACK = (
    "numpy",
    "pandas",
    "scipy",
    "matplotlib",
    "scikit-learn",
    "scikit-image",
    "seaborn",
    "statsmodels",
    "sympy",
    "bokeh",
    "altair",
    "plotly",
    "xarray",
    "networkx",
    "dask",
    "distributed",
    "h5py",
    "pyarrow",
    "numexpr",
    "bottleneck",
    "sqlalchemy",
    "openpyxl",
    "lxml",
    "requests",
    "six",
    "tqdm",
    "click",
    "rich",
    "jupyterlab",
    "notebook",
    "ipykernel",
    "ipywidgets",
    "nbconvert",
    "sphinx",
    "pytest",
    "statsd",
    "importlib-metadata",
)

# Variables that would change what a benchmarked process does; everything else a user of
# this machine has (PYTHONDONTWRITEBYTECODE included) is passed through unchanged.
_SCRUBBED_PREFIXES = ("PYTHON_POPCONTEST_",)
_SCRUBBED = frozenset(
    {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONNOUSERSITE"}
)


@dataclass(frozen=True)
class BenchEnv:
    python: Path
    site_packages: Path
    upstream_dir: Path
    work_dir: Path
    distributions: int
    python_version: str
    ours_version: str
    upstream_version: str
    checkout: str

    def environ(self, **extra: str) -> dict[str, str]:
        """The environment of a benchmarked process: the user's, minus our own settings."""
        return _plain_environ(**extra)


def _log(message: str) -> None:
    print(f"[env] {message}", file=sys.stderr, flush=True)


def _run(args: list[str | Path], env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args], check=False, capture_output=True, text=True, cwd=WORK_DIR, env=env
    )
    if result.returncode != 0:
        raise SystemExit(
            f"command failed ({result.returncode}): {' '.join(map(str, args))}\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return str(result.stdout)


def _base_python() -> str:
    # The interpreter the dev venv was made from, so both environments run the same Python.
    return str(getattr(sys, "_base_executable", sys.executable))


def _stack_digest() -> str:
    return hashlib.sha256("\n".join((_base_python(), *STACK)).encode()).hexdigest()


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _pip(python: Path, *args: str | Path) -> str:
    return _run([python, "-m", "pip", "--disable-pip-version-check", *args])


def _probe(python: Path, code: str, **env: str) -> str:
    return _run([python, "-c", code], env=_plain_environ(**env)).strip()


def _plain_environ(**extra: str) -> dict[str, str]:
    # The venv's python is run by absolute path, as a user of an image would: no activation.
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _SCRUBBED and not key.startswith(_SCRUBBED_PREFIXES)
    }
    env.pop("VIRTUAL_ENV", None)
    env.update(extra)
    return env


def _build_stack(python: Path) -> None:
    if STAMP.exists() and python.exists():
        recorded = json.loads(STAMP.read_text())
        if recorded.get("digest") == _stack_digest():
            return
    if not python.exists():
        _log(f"creating {VENV}")
        _run([_base_python(), "-m", "venv", VENV])
        _pip(python, "install", "--quiet", "--upgrade", "pip")
    _log(f"installing the stack ({len(STACK)} requirements, a few minutes the first time)")
    _pip(python, "install", "--quiet", *STACK)
    STAMP.write_text(json.dumps({"digest": _stack_digest(), "stack": list(STACK)}, indent=1))


def _install_ours(python: Path, site_packages: Path) -> None:
    # Non-editable and forced: a wheel built from the checkout as it is now. pip compiles the
    # bytecode at install; compileall below makes sure of it even if that was turned off.
    _log(f"installing popularity-contest from {REPO} (non-editable)")
    _pip(python, "install", "--quiet", "--no-deps", "--force-reinstall", REPO)
    _run([python, "-m", "compileall", "-q", site_packages / "popularity_contest"])


def _install_upstream(python: Path) -> None:
    if not (UPSTREAM_DIR / "popularity_contest" / "reporter.py").exists():
        _log(f"installing {UPSTREAM_REQUIREMENT} into {UPSTREAM_DIR}")
        _pip(python, "install", "--quiet", "--no-deps", "--target", UPSTREAM_DIR, "--upgrade",
             UPSTREAM_REQUIREMENT)  # fmt: skip
    _run([python, "-m", "compileall", "-q", UPSTREAM_DIR / "popularity_contest"])


def _check_bytecode(package_dir: Path) -> None:
    tag = sys.implementation.cache_tag
    for source in package_dir.rglob("*.py"):
        pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        if not pyc.exists():
            raise SystemExit(f"no bytecode for {source}: the benchmark would compile it each run")


def build(*, reinstall: bool = True) -> BenchEnv:
    """Build or reuse the environment; reinstall this checkout unless told not to."""
    ENV_DIR.mkdir(exist_ok=True)
    WORK_DIR.mkdir(exist_ok=True)
    python = _python(VENV)
    _build_stack(python)
    site_packages = Path(_probe(python, "import sysconfig; print(sysconfig.get_path('purelib'))"))
    if reinstall or not (site_packages / "popularity_contest").exists():
        _install_ours(python, site_packages)
    _install_upstream(python)
    _check_bytecode(site_packages / "popularity_contest")
    _check_bytecode(UPSTREAM_DIR / "popularity_contest")

    # Where each variant's `popularity_contest` really comes from.
    where = "import popularity_contest as p; print(p.__file__)"
    ours_file = Path(_probe(python, where))
    if site_packages not in ours_file.parents:
        raise SystemExit(f"the benchmark would import {ours_file}, not the installed copy")
    upstream_file = Path(_probe(python, where, PYTHONPATH=str(UPSTREAM_DIR)))
    if UPSTREAM_DIR not in upstream_file.parents:
        raise SystemExit(f"upstream runs would import {upstream_file}")

    count = int(
        _probe(python, "import importlib.metadata as m; print(len(list(m.distributions())))")
    )
    if count < MIN_DISTRIBUTIONS:
        raise SystemExit(
            f"only {count} distributions installed in {VENV}; add requirements to STACK "
            f"until there are {MIN_DISTRIBUTIONS}"
        )
    version_code = "import importlib.metadata as m; print(m.version('popularity-contest'))"
    upstream_version = (UPSTREAM_DIR / "popularity_contest-0.4.1.dist-info").exists()
    checkout = _run(["git", "-C", REPO, "describe", "--always", "--dirty"]).strip()
    return BenchEnv(
        python=python,
        site_packages=site_packages,
        upstream_dir=UPSTREAM_DIR,
        work_dir=WORK_DIR,
        distributions=count,
        python_version=_probe(python, "import platform; print(platform.python_version())"),
        ours_version=_probe(python, version_code),
        upstream_version="0.4.1" if upstream_version else "?",
        checkout=checkout,
    )


if __name__ == "__main__":
    env = build()
    for field, value in env.__dict__.items():
        print(f"{field:16} {value}")
