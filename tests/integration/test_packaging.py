"""The built wheel: the collector's mapping rules ship inside it, identical to deploy/."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.envkit import REPO


def test_the_wheel_carries_the_deploy_mapping_file(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("popularity_contest-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.read("popularity_contest/collector/statsd-mapping.yaml")
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        requires = [
            line
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:") and "extra ==" not in line
        ]
    assert shipped == (REPO / "deploy" / "statsd-mapping.yaml").read_bytes()
    # The reporter imports only the standard library; `unused` needs `packaging`.
    assert requires == ["Requires-Dist: packaging>=22"]
