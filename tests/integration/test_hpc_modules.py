"""The HPC module files, loaded by a real Lmod, route a real process's counts to a collector.

Lmod (Debian package ``lmod``) evaluates both shipped files: the Lua one and the Tcl one
(Lmod reads Environment Modules' Tcl files too). The placeholders (the login node's name,
the port, the stack's name) are replaced as an administrator would; ``bash`` evaluates
what ``lmod bash load`` prints, then runs a Python process that activates the reporter and
imports an installed package. The collector started for the test must then count that
package under the stack's name (the ``hub`` / ``namespace`` label).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.collectorkit import Collector
from tests.conftest import require
from tests.envkit import REPO

HPC = REPO / "deploy" / "hpc"
LMOD = "/usr/share/lmod/lmod/libexec/lmod"  # where Debian's package puts Lmod's command
PLACEHOLDER_HOST = "login1.cluster.example"
PLACEHOLDER_STACK = "python-2024"


def lmod() -> str:
    require(
        os.access(LMOD, os.X_OK) and shutil.which("tclsh") is not None,
        f"{LMOD} not found: install the Debian package 'lmod'",
    )
    return LMOD


def module_tree(root: Path, source: Path, statsd_port: int) -> Path:
    """A MODULEPATH holding ``source`` as popularity-contest/1, its placeholders filled in."""
    text = source.read_text()
    for placeholder in (PLACEHOLDER_HOST, PLACEHOLDER_STACK, "8125"):
        assert placeholder in text, (source, placeholder)
    text = text.replace(PLACEHOLDER_HOST, "127.0.0.1").replace("8125", str(statsd_port))
    text = text.replace(PLACEHOLDER_STACK, "test-stack")
    target = root / "popularity-contest" / ("1.lua" if source.suffix == ".lua" else "1")
    target.parent.mkdir(parents=True)
    target.write_text(text)
    return root


@pytest.mark.parametrize("name", ["popularity-contest.lua", "popularity-contest.tcl"])
def test_a_loaded_module_sends_counts_to_the_collector_under_the_stacks_name(
    tmp_path: Path, name: str
) -> None:
    command = lmod()
    home = tmp_path / "home"
    home.mkdir()
    with Collector(tmp_path / "popcon.sqlite3") as collector:
        modulepath = module_tree(tmp_path / "modules", HPC / name, collector.statsd_port)
        script = (
            f'eval "$({command} bash load popularity-contest)" && '
            "env | grep ^PYTHON_POPCONTEST_ | sort && "
            f'exec {sys.executable} -c "import popularity_contest.reporter, yaml"'
        )
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-c", script],
            env={
                "PATH": "/usr/bin:/bin",
                "HOME": str(home),
                "MODULEPATH": str(modulepath),
                "LMOD_CMD": command,
            },
            cwd=home,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            "PYTHON_POPCONTEST_STATSD_HOST=127.0.0.1",
            f"PYTHON_POPCONTEST_STATSD_PORT={collector.statsd_port}",
            "PYTHON_POPCONTEST_STATSD_PREFIX=python_popcon.hub.test-stack.imported_package",
        ]

        def packages() -> list[dict[str, object]]:
            status, body = collector.get("/api/v1/packages?namespace=test-stack")
            assert status == 200, body
            return json.loads(body)["totals"]  # type: ignore[no-any-return]

        collector.wait_until(lambda: bool(packages()), what="the process's counts")
        assert {"namespace": "test-stack", "package": "yaml", "count": 1} in packages()
