"""The install commands the documentation gives work, from a wheel built as `make dist` does.

Until this version is on the package index, `pip install popularity-contest` gives the old
0.4.1. The documented commands name the wheel's directory and a version 0.4.1 cannot
satisfy; this test runs the collector's command in a fresh virtual environment (the
dependencies come from the package index) and then the commands the guides go on to use.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import venv
from pathlib import Path

from popularity_contest import __version__
from tests.envkit import REPO

INSTALL_PAGE = REPO / "docs" / "guides" / "install.md"
COLLECTOR = re.compile(r"^\s*(pip install --find-links \./dist '[^']*\[collector\][^']*')$", re.M)


def _environ() -> dict[str, str]:
    # The caller's pip settings (certificates, mirrors) stay; nothing of this checkout leaks in.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PYTHON_POPCONTEST_DISABLE"] = "1"
    return env


def test_the_documented_collector_install_works_from_the_built_wheel(tmp_path: Path) -> None:
    page = INSTALL_PAGE.read_text()
    (command,) = COLLECTOR.findall(page)
    # The README and deploy/README give the same command.
    assert command in (REPO / "README.md").read_text()
    assert command in (REPO / "deploy" / "README.md").read_text()

    # What `make dist` runs, into a scratch dist/.
    dist = tmp_path / "dist"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir"]
    subprocess.run(
        [*pip_wheel, str(dist), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("popularity_contest-*.whl")
    # The PEP 508 form the page shows names the wheel `make dist` builds today.
    assert f"dist/{wheel.name}" in page
    assert wheel.name == f"popularity_contest-{__version__}-py3-none-any.whl"

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, symlinks=True).create(env_dir)
    bin_dir = env_dir / "bin"
    argv = shlex.split(command)
    assert argv[:2] == ["pip", "install"]
    installed = subprocess.run(
        [str(bin_dir / "python"), "-m", *argv],
        cwd=tmp_path,  # the documented ./dist
        env=_environ(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]

    def run(*args: str) -> str:
        result = subprocess.run(
            [str(bin_dir / "popularity-contest"), *args],
            cwd=tmp_path,
            env=_environ(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert run("--version").strip() == f"popularity-contest {__version__}"
    assert "serve" in run("--help")
    assert "--statsd" in run("serve", "--help")
    # The collector extra came along: the collector's own modules import.
    probe = subprocess.run(
        [str(bin_dir / "python"), "-c", "import prometheus_client, yaml, plotly"],
        env=_environ(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
