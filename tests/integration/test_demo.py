"""The quickstart: `popularity-contest demo` really instruments processes; CI runs `make test`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.envkit import REPO, clean_env


def test_demo_counts_real_processes_per_hub() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "popularity_contest", "demo"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # 11 instrumented processes in two hubs, as counted by the collector and its report.
    assert "11 processes reported; biology 5, physics 6" in out
    assert re.search(r"^physics\s+yaml\s+4\s+66\.7%$", out, re.MULTILINE)
    assert 'python_popcon_imported_package_total{namespace="biology",package="yaml"} 3.0' in out
    assert "stopped: 32 lines received, 32 stored, 0 refused" in result.stderr


def test_readme_quickstart_and_ci_run_the_same_commands() -> None:
    readme = (REPO / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^(make \w+)", quickstart, re.MULTILINE)
    assert commands == ["make demo", "make test"]
    ci = Path(REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.MULTILINE)
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^demo: .*\n\t\$\(BIN\)/popularity-contest demo$", makefile, re.MULTILINE)
