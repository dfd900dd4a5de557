"""The promise of ``unused``, end to end: removing every candidate with pip breaks nothing observed.

A hand-made venv holds small distributions whose code really imports what it requires,
shaped like the cases of issue 10: a Jupyter server whose ``nbconvert`` needs
``bleach[css]`` (so ``tinycss2`` only through an extra), a package imported by one process
(below a privacy threshold of 5), a command-line tool, a conda-managed package, an
editable install and a ``.pth`` that runs code at start-up. ``install site`` activates the
reporter; real processes send to a real ``serve``; ``unused --format requirements`` is fed
to the real ``pip uninstall -r``; then the observed workload and the server run again and
must all succeed, and ``pip check`` must be clean.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.collectorkit import Collector, wait_until
from tests.envkit import REPO, Env, clean_env
from tests.integration.test_report_cli import start_collector, stored_processes

#: The observed workload: Python code run as separate processes of the venv.
WORKLOAD = [
    "import alpha; assert alpha.core() == 2",
    "import alpha",
    "import rare",  # one process: below the threshold of 5
    "import beta",
    "import attr, attrs",  # one distribution, two import names
    "import attr",
]
#: What the hub runs that the window did not observe: the server exporting to HTML.
SERVER = "import jupyter_server; assert jupyter_server.export_html() == 'css ok'"


def build(root: Path) -> Env:
    env = Env(root)

    def dist(
        name: str,
        files: dict[str, str],
        *requires: str,
        installer: str = "pip",
        scripts: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Path:
        info = env.add_dist(name, files, **kwargs)
        (info / "INSTALLER").write_text(f"{installer}\n")
        with (info / "METADATA").open("a") as metadata:
            for requirement in requires:
                metadata.write(f"Requires-Dist: {requirement}\n")
        if scripts:
            lines = [f"{n} = {target}" for n, target in scripts.items()]
            (info / "entry_points.txt").write_text("[console_scripts]\n" + "\n".join(lines) + "\n")
        return info

    dist(
        "alpha",
        {"alpha/__init__.py": "from alpha_core import TWO\ndef core():\n    return TWO\n"},
        "alpha-core>=1",
        'alpha-extra; extra == "all"',
    )
    dist("alpha-core", {"alpha_core/__init__.py": "TWO = 2\n"})
    dist("alpha-extra", {"alpha_extra/__init__.py": ""})
    dist("beta", {"beta/__init__.py": ""})
    dist("gamma", {"gamma/__init__.py": ""})
    dist("attrs", {"attr/__init__.py": "", "attrs/__init__.py": "from attr import *\n"})
    dist("rare", {"rare/__init__.py": "import rare_dep\n"}, "rare-dep")
    dist("rare-dep", {"rare_dep/__init__.py": ""})
    # The Jupyter stack, trimmed to the chain that broke: nbconvert -> bleach[css] -> tinycss2.
    dist(
        "jupyter-server",
        {
            "jupyter_server/__init__.py": (
                "import nbconvert\ndef export_html():\n    return nbconvert.export()\n"
            )
        },
        "nbconvert>=1",
    )
    dist(
        "nbconvert",
        {
            "nbconvert/__init__.py": (
                "from bleach.css_sanitizer import CSSSanitizer\n"
                "def export():\n    return CSSSanitizer().check()\n"
            )
        },
        "bleach[css]!=5.0.0",
        'pyppeteer; extra == "webpdf"',
    )
    dist(
        "bleach",
        {
            "bleach/__init__.py": "",
            "bleach/css_sanitizer.py": (
                "import tinycss2\nclass CSSSanitizer:\n    def check(self):\n"
                "        return tinycss2.OK\n"
            ),
        },
        'tinycss2>=1; extra == "css"',
    )
    dist("tinycss2", {"tinycss2/__init__.py": "OK = 'css ok'\n"})
    dist("pyppeteer", {"pyppeteer/__init__.py": ""})
    # Commands: `tool` is run (observed through `install site`), `tool2` never is.
    dist(
        "tool",
        {"tool/__init__.py": "def main():\n    import tool_lib\n    return 0\n"},
        "tool-lib",
        scripts={"tool": "tool:main"},
    )
    dist("tool-lib", {"tool_lib/__init__.py": ""})
    dist(
        "tool2",
        {"tool2/__init__.py": "def main():\n    return 0\n"},
        scripts={"tool2": "tool2:main"},
    )
    script = env.root / "bin" / "tool"
    script.write_text(f"#!{env.python}\nimport sys\nfrom tool import main\nsys.exit(main())\n")
    script.chmod(0o755)
    # Not pip's, not counted, or run before the reporter: never in the requirements list.
    dist("condapkg", {"condapkg/__init__.py": ""}, installer="conda")
    dist(
        "mine",
        {"mine/__init__.py": ""},
        direct_url='{"url": "file:///src/mine", "dir_info": {"editable": true}}',
    )
    dist(
        "startpkg",
        {"startpkg/__init__.py": "", "startpkg.pth": "import startpkg\n"},
    )
    return env


@dataclass
class Hub:
    env: Env
    db: Path
    collector: Collector


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "popularity_contest", *args],
        env=clean_env({"PYTHON_POPCONTEST_DISABLE": "1"}),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run_workload(hub: Hub) -> list[subprocess.CompletedProcess[str]]:
    sending = {
        "PYTHON_POPCONTEST_STATSD_HOST": "127.0.0.1",
        "PYTHON_POPCONTEST_STATSD_PORT": str(hub.collector.statsd_port),
    }
    done = [hub.env.run(code, env=sending) for code in WORKLOAD]
    done.append(
        subprocess.run(
            [str(hub.env.root / "bin" / "tool")],
            env=clean_env(sending),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    )
    return done


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    root = tmp_path_factory.mktemp("promise")
    env = build(root / "venv")
    done = cli("install", "site", "--prefix", str(env.root), "--format", "json")
    assert done.returncode == 0, done.stderr
    # As if installed 40 days ago: `install site` covers the whole default window (30 days),
    # so a command run in it was observed. (A .pth newer than the window's start does not
    # count as evidence: see tests/unit/test_unused.py.)
    pth = Path(json.loads(done.stdout)["path"])
    long_ago = time.time() - 40 * 86400
    os.utime(pth, (long_ago, long_ago))
    collector = start_collector(root)
    try:
        hub = Hub(env, root / "popcon.sqlite3", collector)
        for process in run_workload(hub):
            assert process.returncode == 0, process.stderr
        expected = len(WORKLOAD) + 1
        wait_until(
            lambda: True if stored_processes(collector) == expected else None,
            "every process of the workload to be stored",
        )
        yield hub
    finally:
        collector.close()


def verdicts(hub: Hub, *args: str) -> dict[str, dict[str, Any]]:
    done = cli(
        "unused", "--db", str(hub.db), "--python", str(hub.env.python), "--format", "json", *args
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["activation"] == {"ipython": False, "site": True}
    return {row["distribution"]: row for row in document["distributions"]}


def test_verdicts_with_install_site(hub: Hub) -> None:
    rows = verdicts(hub, "--min-processes", "5")
    assert {name: row["verdict"] for name, row in rows.items()} == {
        # The threshold hides everything here (2 processes at most): hidden, never unused.
        "alpha": "hidden",
        "alpha-core": "hidden",
        "beta": "hidden",
        "rare": "hidden",
        "rare-dep": "hidden",
        "tool": "hidden",
        "tool-lib": "hidden",
        "attrs": "hidden",
        "jupyter-server": "infrastructure",
        "nbconvert": "infrastructure",
        "bleach": "infrastructure",
        "tinycss2": "infrastructure",  # through bleach[css]
        "mine": "local",
        "startpkg": "startup",
        "alpha-extra": "unused",
        "gamma": "unused",
        "pyppeteer": "unused",
        "tool2": "unused",  # a command, but `install site` would have seen it run
        "condapkg": "unused",
    }
    assert rows["condapkg"]["manager"] == "conda"
    assert rows["condapkg"]["pip_removable"] is False
    plain = verdicts(hub)
    assert plain["tool"]["verdict"] == "used"  # running the command was counted
    assert plain["alpha"]["processes"] == 2
    assert plain["rare"]["verdict"] == "used"
    # attr 2 + attrs 1 used to show as 3 "imports": 2 processes imported attrs, a lower bound.
    assert (plain["attrs"]["processes"], plain["attrs"]["processes_exact"]) == (2, False)


def test_removing_every_candidate_breaks_nothing_observed(hub: Hub, tmp_path: Path) -> None:
    lists = []
    for threshold in ((), ("--min-processes", "5")):
        done = cli(
            "unused",
            "--db",
            str(hub.db),
            "--python",
            str(hub.env.python),
            "--format",
            "requirements",
            *threshold,
        )
        assert done.returncode == 0, done.stderr
        lists.append(done.stdout.splitlines())
    assert (
        lists[0]
        == lists[1]
        == [
            "alpha-extra==1.0",
            "gamma==1.0",
            "pyppeteer==1.0",
            "tool2==1.0",
        ]
    )
    requirements = tmp_path / "remove.txt"
    requirements.write_text("\n".join(lists[1]) + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(hub.env.python)]
    quiet = clean_env({"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHON_POPCONTEST_DISABLE": "1"})
    done = subprocess.run(
        [*pip, "uninstall", "--yes", "-r", str(requirements)],
        env=quiet,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # They are really gone...
    gone = hub.env.run("import gamma", env={"PYTHON_POPCONTEST_DISABLE": "1"})
    assert gone.returncode != 0
    # ...and everything observed, and the server that was not, still works.
    for process in run_workload(hub):
        assert process.returncode == 0, process.stderr
    server = hub.env.run(SERVER, env={"PYTHON_POPCONTEST_DISABLE": "1"})
    assert server.returncode == 0, server.stderr
    check = subprocess.run(
        [*pip, "check"], env=quiet, capture_output=True, text=True, timeout=300, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
