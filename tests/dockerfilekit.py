"""Read a Dockerfile the way the builder does, so tests can check and re-run its steps.

No Docker daemon or registry is reachable here: tests lint the Dockerfiles with hadolint and
run their steps in a venv instead. This reads the instructions (comment lines dropped,
``\\`` continuations joined), and splits the parts those tests need: ``ENV`` pairs, the
flags and shell command of a ``RUN``, the JSON form of ``CMD``/``ENTRYPOINT``/``HEALTHCHECK``.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, ENV, ...
    arguments: str  # the rest, continuations joined with a space


@dataclass(frozen=True)
class Run:
    flags: dict[str, str]  # --mount=type=bind,... -> {"mount": "type=bind,..."}
    command: str  # the shell command after the flags


def instructions(path: Path) -> list[Instruction]:
    """Every instruction of the Dockerfile at ``path``, in order."""
    found: list[Instruction] = []
    pending = ""
    for raw in path.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # the builder drops comment lines, also inside a continuation
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        text = pending + line
        pending = ""
        keyword, _, arguments = text.partition(" ")
        found.append(Instruction(keyword.upper(), arguments.strip()))
    assert not pending, f"{path}: a continuation runs past the end"
    return found


def only(path: Path, keyword: str) -> list[str]:
    """The arguments of every ``keyword`` instruction."""
    return [i.arguments for i in instructions(path) if i.keyword == keyword]


def env(path: Path) -> dict[str, str]:
    """Every ``ENV key=value`` pair, later ones winning."""
    result: dict[str, str] = {}
    for arguments in only(path, "ENV"):
        for pair in shlex.split(arguments):
            key, sep, value = pair.partition("=")
            assert sep, f"ENV {pair!r}: only the key=value form is used here"
            result[key] = value
    return result


def runs(path: Path) -> list[Run]:
    """Every ``RUN`` (shell form), its ``--flag=value`` options apart from the command."""
    result = []
    for arguments in only(path, "RUN"):
        flags: dict[str, str] = {}
        rest = arguments
        while (match := re.match(r"--([a-z-]+)=(\S+)\s+", rest)) is not None:
            flags[match.group(1)] = match.group(2)
            rest = rest[match.end() :]
        result.append(Run(flags, rest))
    return result


def exec_form(arguments: str) -> list[str]:
    """The JSON array of ``CMD``/``ENTRYPOINT`` (exec form, which these Dockerfiles use)."""
    value = json.loads(arguments)
    assert isinstance(value, list), arguments
    assert all(isinstance(part, str) for part in value), arguments
    return value


def healthcheck(path: Path) -> tuple[dict[str, str], list[str]]:
    """(options, command) of the one ``HEALTHCHECK ... CMD [...]``."""
    (arguments,) = only(path, "HEALTHCHECK")
    options_text, sep, command = arguments.partition(" CMD ")
    assert sep, f"HEALTHCHECK without CMD: {arguments}"
    options = dict(option.removeprefix("--").split("=", 1) for option in options_text.split())
    return options, exec_form(command)


def mount(flags: dict[str, str]) -> dict[str, str]:
    """``--mount=type=bind,source=dist,target=/tmp/dist`` as a dict."""
    return dict(part.split("=", 1) for part in flags["mount"].split(","))
