"""`popularity-contest install ipython|site` in a real virtual environment, proven end to end.

One venv is built per module (``python -m venv --without-pip``, about 0.1 s): popularity-contest
and a small hand-made distribution ``popcon_probe`` are installed into its own site-packages
the way pip lays them out (package + ``*.dist-info`` with RECORD), and a path-only ``.pth``
lends it IPython, ipykernel and statsd from the test interpreter's site-packages. Those are
not in the venv's site directory, so the reporter never counts them; ``popcon_probe`` is the
one package that can arrive. A real UDP socket on 127.0.0.1 receives what the processes send.
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

from popularity_contest import activation as install
from tests.conftest import require
from tests.envkit import Listener, execute

ROOT = Path(__file__).resolve().parents[2]
PROBE = "popcon_probe"
PROBE_LINE = f"python_popcon.imported_package.{PROBE}:1|c"
PROCESS_LINE = "python_popcon.processes_reported:1|c"
TIMEOUT = 60.0


class Venv:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.python = root / "bin" / "python"
        self.site = Path(
            subprocess.run(
                [
                    str(self.python),
                    "-I",
                    "-c",
                    "import sysconfig; print(sysconfig.get_path('purelib'))",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        self.startup_dir = root / "etc" / "ipython" / "startup"


def install_distribution(site: Path, name: str, files: dict[str, bytes]) -> None:
    """Lay out a distribution as pip would: its files and a dist-info with RECORD."""
    for relative, data in files.items():
        target = site / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    dist_info = site / f"{name.replace('-', '_')}-0.0.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.0\n")
    (dist_info / "INSTALLER").write_text("pip\n")
    record = [f"{relative},," for relative in files]
    record += [f"{dist_info.name}/{leaf},," for leaf in ("METADATA", "INSTALLER", "RECORD")]
    (dist_info / "RECORD").write_text("\n".join(record) + "\n")


def install_popularity_contest(site: Path) -> None:
    package = ROOT / "popularity_contest"
    files = {
        str(path.relative_to(ROOT)): path.read_bytes()  # read_bytes follows the mapping symlink
        for path in sorted(package.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }
    install_distribution(site, "popularity-contest", files)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    import ipykernel
    import IPython

    lend = {str(Path(m.__file__ or "").resolve().parents[1]) for m in (IPython, ipykernel)}
    root = tmp_path_factory.mktemp("activation") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    env = Venv(root)
    # Path lines only: these directories are importable but are no site directory of the venv.
    (env.site / "_popcon_test_lend.pth").write_text(
        "\n".join([*sorted(lend), sysconfig.get_path("purelib")]) + "\n"
    )
    install_popularity_contest(env.site)
    install_distribution(env.site, "popcon-probe", {f"{PROBE}/__init__.py": b"VALUE = 42\n"})
    return env


@pytest.fixture
def environ(listener: Listener, tmp_path: Path) -> dict[str, str]:
    """A clean environment for the venv's processes: no user profile, no user site."""
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "IPYTHONDIR": str(home / ".ipython"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYTHON_POPCONTEST_STATSD_HOST": "127.0.0.1",
        "PYTHON_POPCONTEST_STATSD_PORT": str(listener.port),
    }


def run(
    venv: Venv, args: list[str], env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(venv.python), *args],
        env=env,
        cwd=env[
            "HOME"
        ],  # not the source tree: IPython puts the working directory first on sys.path
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def tool(venv: Venv, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run(venv, ["-m", "popularity_contest", *args], env)


def ipython(venv: Venv, env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    return run(
        venv,
        ["-m", "IPython", "--no-banner", "--HistoryManager.enabled=False", "-c", code],
        env,
    )


@pytest.fixture
def ipython_installed(venv: Venv, environ: dict[str, str]) -> Iterator[Path]:
    done = tool(venv, environ, "install", "ipython", "--format", "json")
    path = venv.startup_dir / install.STARTUP_NAME
    assert f'"path": "{path}"' in done.stdout
    yield path
    tool(venv, environ, "uninstall", "ipython")


@pytest.fixture
def site_installed(venv: Venv, environ: dict[str, str]) -> Iterator[Path]:
    tool(venv, environ, "install", "site")
    path = venv.site / install.PTH_NAME
    assert path.is_file()
    yield path
    tool(venv, environ, "uninstall", "site")


def broken_package(tmp_path: Path) -> str:
    """A directory that shadows popularity_contest with one that raises on import."""
    shadow = tmp_path / "shadow"
    (shadow / "popularity_contest").mkdir(parents=True)
    (shadow / "popularity_contest" / "__init__.py").write_text("raise RuntimeError('broken')\n")
    return str(shadow)


# --- IPython startup file --------------------------------------------------------------------


def test_ipython_reports_an_import_and_uninstall_stops_it(
    venv: Venv, environ: dict[str, str], listener: Listener
) -> None:
    done = tool(venv, environ, "install", "ipython")
    assert "created" in done.stdout
    assert "unchanged" in tool(venv, environ, "install", "ipython").stdout
    assert listener.drain() == []  # the tool's own processes report nothing

    code = (
        f"import {PROBE}; print(sorted(n for n in dir() if 'popularity' in n or 'Exception' in n))"
    )
    done = ipython(venv, environ, code)
    assert done.stdout.strip().endswith("[]")  # the startup file binds no names
    assert "Traceback" not in done.stdout + done.stderr
    lines = listener.drain()
    assert lines.count(PROBE_LINE) == 1
    assert lines.count(PROCESS_LINE) == 1
    assert set(lines) == {PROBE_LINE, PROCESS_LINE}  # IPython's own imports do not count

    assert "removed" in tool(venv, environ, "uninstall", "ipython").stdout
    assert "absent" in tool(venv, environ, "uninstall", "ipython").stdout
    ipython(venv, environ, f"import {PROBE}")
    assert listener.drain() == []


def test_ipython_startup_file_never_stops_the_next_startup_file(
    venv: Venv,
    environ: dict[str, str],
    listener: Listener,
    ipython_installed: Path,
    tmp_path: Path,
) -> None:
    later = venv.startup_dir / "50-later.py"
    later.write_text("print('LATER STARTUP FILE RAN')\n")
    try:
        done = ipython(venv, {**environ, "PYTHONPATH": broken_package(tmp_path)}, f"import {PROBE}")
    finally:
        later.unlink()
    assert "LATER STARTUP FILE RAN" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert "RuntimeError" not in done.stdout + done.stderr
    assert listener.drain() == []  # broken package: nothing sent, nothing shown


def test_ipython_and_site_together_count_once(
    venv: Venv,
    environ: dict[str, str],
    listener: Listener,
    ipython_installed: Path,
    site_installed: Path,
) -> None:
    ipython(venv, environ, f"import {PROBE}")
    lines = listener.drain()
    assert lines.count(PROBE_LINE) == 1
    assert lines.count(PROCESS_LINE) == 1


# --- Jupyter kernels -------------------------------------------------------------------------


@pytest.fixture
def kernel_manager(
    venv: Venv, environ: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[object]:
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec_dir = tmp_path / "kernels" / "popcon-venv"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [str(venv.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "popcon venv",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")])
    manager = KernelManager(
        kernel_name="popcon-venv",
        kernel_spec_manager=specs,
        connection_file=str(tmp_path / "kernel.json"),
    )
    manager.start_kernel(env=environ, cwd=environ["HOME"])
    try:
        yield manager
    finally:
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)
        manager.cleanup_resources()


def test_kernel_counts_an_import_on_normal_shutdown(
    listener: Listener, ipython_installed: Path, kernel_manager: object
) -> None:
    execute(kernel_manager, f"import {PROBE}")
    kernel_manager.shutdown_kernel(now=False)  # type: ignore[attr-defined]
    lines = listener.drain()
    assert lines.count(PROBE_LINE) == 1
    assert lines.count(PROCESS_LINE) == 1


def test_sigkilled_kernel_still_counts_its_import(
    listener: Listener, ipython_installed: Path, kernel_manager: object
) -> None:
    execute(kernel_manager, f"import {PROBE}")
    provisioner = kernel_manager.provisioner  # type: ignore[attr-defined]
    process = provisioner.process
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=TIMEOUT) == -signal.SIGKILL
    lines = listener.drain()
    assert lines.count(PROBE_LINE) == 1  # sent when the cell ran: no exit hook was needed
    assert lines.count(PROCESS_LINE) == 1


# --- .pth (every process) --------------------------------------------------------------------


def test_site_reports_plain_python_and_stays_out_of_isolated_mode(
    venv: Venv, environ: dict[str, str], listener: Listener
) -> None:
    assert "created" in tool(venv, environ, "install", "site").stdout
    try:
        done = run(venv, ["-c", f"import {PROBE}; print({PROBE}.VALUE)"], environ)
        assert (done.stdout, done.stderr) == ("42\n", "")
        lines = listener.drain()
        assert set(lines) == {PROBE_LINE, PROCESS_LINE}
        assert len(lines) == 2

        done = run(venv, ["-I", "-c", f"import {PROBE}; print({PROBE}.VALUE)"], environ)
        assert (done.stdout, done.stderr) == ("42\n", "")
        done = run(venv, ["-S", "-c", "print('no site')"], environ)
        assert (done.stdout, done.stderr) == ("no site\n", "")
        build = {**environ, "PIP_BUILD_TRACKER": "/tmp/pip-build-tracker"}
        done = run(venv, ["-c", f"import {PROBE}"], build)
        assert done.stderr == ""
        assert listener.drain() == []  # -I, -S and pip's build subprocesses: nothing sent

        done = run(
            venv,
            ["-c", f"import {PROBE}"],
            {**environ, "PYTHONPATH": broken_package(venv.root.parent)},
        )
        assert (done.returncode, done.stderr) == (0, "")
        assert listener.drain() == []
    finally:
        assert "removed" in tool(venv, environ, "uninstall", "site").stdout
    run(venv, ["-c", f"import {PROBE}"], environ)
    assert listener.drain() == []


def test_site_leaves_the_tool_itself_alone(
    venv: Venv, environ: dict[str, str], listener: Listener, site_installed: Path
) -> None:
    done = tool(venv, environ, "check", "--format", "json")
    assert '"active_in_this_process": true' in done.stdout  # the .pth ran in the tool...
    assert listener.drain() == ["python_popcon.check:1|c"]  # ...which sent only its test counter


def test_pth_is_harmless_after_pip_uninstall(
    venv: Venv, environ: dict[str, str], listener: Listener, tmp_path: Path
) -> None:
    tool(venv, environ, "install", "site")
    pth = venv.site / install.PTH_NAME
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(venv.python),
                "uninstall",
                "--yes",
                "--quiet",
                "popularity-contest",
            ],
            check=True,
            capture_output=True,
            timeout=TIMEOUT,
        )
        assert not (venv.site / "popularity_contest").exists()
        assert pth.is_file()  # pip does not know about it
        done = run(venv, ["-c", f"import {PROBE}; print('fine')"], environ)
        assert (done.stdout, done.stderr) == ("fine\n", "")
        assert listener.drain() == []
        # `uninstall site` from another environment removes the leftover file.
        removed = subprocess.run(
            [
                sys.executable,
                "-m",
                "popularity_contest",
                "uninstall",
                "site",
                "--prefix",
                str(venv.root),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=TIMEOUT,
        )
        assert "removed" in removed.stdout
        assert not pth.exists()
    finally:
        pth.unlink(missing_ok=True)
        if not (venv.site / "popularity_contest").exists():
            shutil.rmtree(venv.site / "popularity_contest-0.0.0.dist-info", ignore_errors=True)
            install_popularity_contest(venv.site)


@pytest.mark.parametrize(
    ("ipython_dir", "counted"),
    [("a-ipython", False), ("z-ipython", True)],
    ids=["user-file-sorts-first", "user-file-sorts-last"],
)
@pytest.mark.usefixtures("ipython_installed")
def test_ipython_runs_startup_files_in_full_path_order(
    venv: Venv,
    environ: dict[str, str],
    listener: Listener,
    ipython_dir: str,
    counted: bool,
) -> None:
    # IPython sorts the startup files of all its directories by full path and stops at the
    # first that raises: a broken user file stops ours only if its path sorts before ours.
    home = venv.root.parent / ipython_dir  # beside the venv: "a-..." < "venv" < "z-..."
    startup = home / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "99-broken.py").write_text("raise RuntimeError('user startup file')\n")
    ipython(venv, {**environ, "IPYTHONDIR": str(home)}, f"import {PROBE}")
    assert (PROBE_LINE in listener.drain()) is counted


@pytest.mark.needs_root
@pytest.mark.parametrize("method", install.METHODS)
def test_read_only_environment_fails_with_one_line(venv: Venv, method: str) -> None:
    # Root may write anywhere, so make the environment truly read-only: a read-only bind
    # mount in a private mount namespace (nothing outside this one command sees it).
    unshare = shutil.which("unshare")
    require(unshare is not None and os.geteuid() == 0, "needs root and unshare(1) for -m")
    assert unshare is not None
    root = str(venv.root)
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    done = subprocess.run(
        [unshare, "-m", "--propagation", "private", "sh", "-c", script, "sh", root,
         sys.executable, "-m", "popularity_contest", "install", method, "--prefix", root],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )  # fmt: skip
    require(not done.stderr.startswith("mount"), f"cannot mount here: {done.stderr}")
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"popularity-contest install: cannot write {root}")
    assert "Read-only file system" in done.stderr
    target = (
        venv.startup_dir / install.STARTUP_NAME
        if method == "ipython"
        else venv.site / install.PTH_NAME
    )
    assert not target.exists()
