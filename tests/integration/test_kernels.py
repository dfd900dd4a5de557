"""Real IPython shells and Jupyter kernels under every activation route (issue 9, items 1-2).

The venv built here *mirrors* the test interpreter's site-packages: every installed
distribution (IPython, ipykernel, zmq, tornado, traitlets, jupyter_client, ...) is linked
into the venv's own site directory, so, unlike in ``test_activation.py``, the kernel's
plumbing *could* be counted. Hand-made probes of each kind of module are installed beside
it: a package, a single-file module, a namespace package and a C extension module.

For each route (``install ipython``, ``install site``, both) the tests prove that:

* what IPython imports to start itself is never sent, only what the user's code imports;
* a kernel SIGKILLed after a cell still counted what the cell imported, for every kind of
  module (the ``post_run_cell`` hook is registered whatever activated the reporter).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require
from tests.envkit import Env, Listener, add_dist, execute

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60.0
PROCESS = "python_popcon.processes_reported:1|c"
ROUTES = ("ipython", "site", "both")
KINDS = {"package": "pkgprobe", "single-file": "fileprobe", "namespace": "nsprobe",
         "extension": "extprobe"}  # fmt: skip
#: Which kind each route's last (killed) cell imports: only post_run_cell can report it.
LAST = {"ipython": "single-file", "site": "extension", "both": "namespace"}

EXTENSION_C = """
#include <Python.h>
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "extprobe", NULL, -1, NULL};
PyMODINIT_FUNC PyInit_extprobe(void) { return PyModule_Create(&def); }
"""


def pkg(name: str) -> str:
    return f"python_popcon.imported_package.{name}:1|c"


def _build_extension(site: Path, work: Path) -> None:
    gcc = shutil.which("gcc") or shutil.which("cc")
    require(gcc is not None, "a C compiler (Debian 'gcc') builds the extension-module probe")
    assert gcc is not None
    source = work / "extprobe.c"
    source.write_text(EXTENSION_C)
    target = site / f"extprobe{sysconfig.get_config_var('EXT_SUFFIX')}"
    include = sysconfig.get_path("include")
    subprocess.run(
        [gcc, "-shared", "-fPIC", f"-I{include}", str(source), "-o", str(target)], check=True
    )
    add_dist(site, "extprobe", {})
    record = next(site.glob("extprobe-*.dist-info")) / "RECORD"
    record.write_text(f"{target.name},,\n" + record.read_text())


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Env:
    work = tmp_path_factory.mktemp("kernels")
    env = Env(work / "venv")
    ours = Path(sysconfig.get_path("purelib"))
    for entry in ours.iterdir():
        if entry.suffix == ".pth" or entry.name.startswith(("popularity_contest", "__editable__")):
            continue
        (env.site / entry.name).symlink_to(entry)
    env.add_dist("pkgprobe", {"pkgprobe/__init__.py": ""})
    env.add_dist("fileprobe", {"fileprobe.py": ""})
    env.add_dist("nsprobe", {"nsprobe/part.py": ""})
    # Direct imports (issue 15): directa imports directb itself.
    env.add_dist("directa", {"directa/__init__.py": "import directb\n"})
    env.add_dist("directb", {"directb/__init__.py": ""})
    _build_extension(env.site, work)
    return env


def _environ(listener: Listener, home: Path) -> dict[str, str]:
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "IPYTHONDIR": str(home / ".ipython"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        **listener.env(),
    }


def _tool(venv: Env, env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [str(venv.python), "-m", "popularity_contest", *args],
        env={**env, "PYTHON_POPCONTEST_DISABLE": "1"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(params=ROUTES)
def route(request: pytest.FixtureRequest, venv: Env, tmp_path: Path) -> Iterator[str]:
    methods = ["ipython", "site"] if request.param == "both" else [request.param]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    for method in methods:
        _tool(venv, env, "install", method)
    yield str(request.param)
    for method in methods:
        _tool(venv, env, "uninstall", method)


def test_ipython_c_counts_only_what_the_user_code_imports(
    venv: Env, route: str, listener: Listener, tmp_path: Path
) -> None:
    done = subprocess.run(
        [str(venv.python), "-m", "IPython", "--no-banner", "--HistoryManager.enabled=False",
         "-c", "import pkgprobe"],
        env=_environ(listener, tmp_path / "home"), cwd=tmp_path, capture_output=True,
        text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    # Not IPython, pygments, prompt_toolkit, traitlets...: they start the shell.
    assert sorted(listener.lines()) == sorted([PROCESS, pkg("pkgprobe")])


@pytest.fixture
def kernel(
    venv: Env, listener: Listener, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[object]:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec_dir = tmp_path / "kernels" / "popcon-kernels"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [str(venv.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "popcon kernels",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    manager = KernelManager(
        kernel_name="popcon-kernels",
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")]),
        connection_file=str(tmp_path / "kernel.json"),
    )
    environ = _environ(listener, tmp_path / "home")
    if "count_direct" in request.fixturenames:
        environ["PYTHON_POPCONTEST_COUNT_DIRECT"] = "1"
    manager.start_kernel(env=environ, cwd=environ["HOME"])
    try:
        yield manager
    finally:
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)
        manager.cleanup_resources()


def test_a_kernel_counts_user_imports_not_its_plumbing(
    route: str, kernel: object, listener: Listener
) -> None:
    execute(kernel, "x = 1", "import pkgprobe")
    kernel.shutdown_kernel(now=False)  # type: ignore[attr-defined]
    assert sorted(listener.lines()) == sorted([PROCESS, pkg("pkgprobe")])


def test_a_killed_kernel_counted_every_kind_of_module(
    route: str, kernel: object, listener: Listener
) -> None:
    order = [kind for kind in KINDS if kind != LAST[route]] + [LAST[route]]
    cells = [f"import {KINDS[kind]}" + (".part" if kind == "namespace" else "") for kind in order]
    execute(kernel, *cells)
    process = kernel.provisioner.process  # type: ignore[attr-defined]
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=TIMEOUT) == -signal.SIGKILL
    assert sorted(listener.lines()) == sorted([PROCESS, *(pkg(name) for name in KINDS.values())])


def test_the_test_interpreter_is_mirrored() -> None:
    # The premise of this module: the plumbing is installed where it could be counted.
    import ipykernel

    assert Path(ipykernel.__file__).resolve().is_relative_to(Path(sys.prefix).resolve())


def direct(name: str) -> str:
    return f"python_popcon.directly_imported_package.{name}:1|c"


def _kill(kernel: object) -> None:
    process = kernel.provisioner.process  # type: ignore[attr-defined]
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=TIMEOUT) == -signal.SIGKILL


@pytest.fixture
def count_direct() -> bool:
    """Requested by a test: its kernel counts direct imports (opt-in)."""
    return True


@pytest.mark.parametrize("route", ["site", "ipython"], indirect=True)
@pytest.mark.parametrize("again", [False, True], ids=["library-only", "cell-imports-it-too"])
def test_a_killed_kernel_sent_what_its_cells_imported_directly(
    route: str, count_direct: bool, kernel: object, listener: Listener, again: bool
) -> None:
    # directb comes along with directa: not direct until a cell imports it itself (it is
    # then already in sys.modules). The kernel's own imports are never direct.
    cells = ["import directa", "from directb import *"] if again else ["import directa"]
    execute(kernel, *cells)
    _kill(kernel)
    expected = [PROCESS, pkg("directa"), pkg("directb"), direct("directa")]
    assert sorted(listener.lines()) == sorted(expected + ([direct("directb")] if again else []))
