"""The shipped systemd unit and its settings file, read as systemd reads them (the parts used)."""

from __future__ import annotations

import shlex
from pathlib import Path

from tests.envkit import REPO

UNIT = REPO / "deploy" / "systemd" / "popularity-contest.service"
ENV_FILE = REPO / "deploy" / "systemd" / "popularity-contest.env"
#: The interpreter the unit expects (the venv the guide makes).
UNIT_PYTHON = "/opt/popularity-contest/bin/python"


def read_unit(path: Path = UNIT) -> dict[str, dict[str, list[str]]]:
    """{section: {key: [values in order]}}; comments and blank lines skipped."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path}: {line!r} outside a section"
        assert "\\" not in line, f"{path}: keep lines simple (no continuations): {line!r}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def exec_start(path: Path = UNIT) -> list[str]:
    """The ExecStart command line, split as systemd splits a line without specifiers."""
    [line] = read_unit(path)["Service"]["ExecStart"]
    # The test runs the line as it is written: no variables or specifiers to expand.
    assert "$" not in line, line
    assert "%" not in line, line
    return shlex.split(line)


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    """KEY=value lines of an EnvironmentFile (comments skipped)."""
    found: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and line[0] not in "#;":
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found


def commented_variables(path: Path = ENV_FILE) -> set[str]:
    """The variables the settings file documents (as ``#NAME=default`` lines)."""
    names = set()
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#PYTHON_POPCONTEST_") and "=" in line:
            names.add(line[1:].partition("=")[0])
    return names
