"""A target environment as ``unused`` and ``report --by distribution`` see it.

``inspect(python)`` runs :mod:`popularity_contest.answers.probes.installed` by path with the
target interpreter (``-I``: no user site, no ``PYTHONPATH``; reporter disabled; the probe
uses only the standard library, since the target may have nothing else) and returns an
``Environment``: each distribution's raw facts as ``Installed`` (PEP 503 name, version,
``INSTALLER``, raw ``Requires-Dist``, top-level names by the reporter's own rule, scripts,
PEP 610 origin, ``.pth`` files, Jupyter data), the PEP 508 marker values and which
activation files exist. ``InspectError`` (one line naming the interpreter) when it cannot.
``interpreter(python, prefix)`` names the interpreter of ``--python``/``--prefix``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from popularity_contest.answers.requirements import normalize
from popularity_contest.answers.window import Window
from popularity_contest.errors import PopconError

#: Installers whose installs ``pip uninstall`` removes cleanly (both write RECORD).
PIP_REMOVABLE = frozenset({"pip", "uv"})


_PROBE = Path(__file__).resolve().parent / "probes" / "installed.py"


class InspectError(PopconError):
    """The target interpreter could not be inspected."""


@dataclass
class Installed:
    """One installed distribution as the probe saw it (see ``probes/installed.py``)."""

    distribution: str  # PEP 503 normalised
    version: str
    packages: list[str]  # top-level import names, by the reporter's rule
    requires: list[str] = field(default_factory=list)  # raw Requires-Dist strings
    scripts: list[str] = field(default_factory=list)
    entry_point_groups: list[str] = field(default_factory=list)
    installer: str | None = "pip"
    local: str | None = None  # "directory", "vcs", "file" (PEP 610) or None
    metadata: str = "dist-info"
    record: bool = True
    in_prefix: bool = True
    pth_imports: bool = False
    jupyter: list[str] = field(default_factory=list)  # keys of unused.JUPYTER_DATA

    @property
    def pip_removable(self) -> bool:
        """Whether ``pip uninstall`` may remove it: pip/uv dist-info with RECORD, in prefix."""
        return (
            self.metadata == "dist-info"
            and self.record
            and self.in_prefix
            and self.installer in PIP_REMOVABLE
        )

    @property
    def manager(self) -> str:
        """Who manages it: the ``INSTALLER`` file's word, with what stops pip if anything."""
        who = self.installer or "unknown"
        if self.installer in PIP_REMOVABLE and not self.pip_removable:
            why = "no RECORD" if not self.record else "outside the environment"
            if self.metadata != "dist-info":
                why = "egg-info"
            who += f" ({why})"
        return who

    @classmethod
    def from_probe(cls, item: Mapping[str, Any]) -> Installed:
        return cls(
            distribution=normalize(str(item["name"])),
            version=str(item["version"]),
            packages=[str(p) for p in item["packages"]],
            requires=[str(r) for r in item["requires"]],
            scripts=[str(s) for s in item["scripts"]],
            entry_point_groups=[str(g) for g in item["entry_point_groups"]],
            installer=_word(item["installer"]),
            local=None if item["local"] is None else str(item["local"]),
            metadata=str(item["metadata"]),
            record=bool(item["record"]),
            in_prefix=bool(item["in_prefix"]),
            pth_imports=bool(item["pth_imports"]),
            jupyter=[str(j) for j in item["jupyter"]],
        )


def _word(text: object) -> str | None:
    """An ``INSTALLER`` value fit for a table: printable, one short word (else ``?``)."""
    if text is None:
        return None
    word = str(text).strip()[:40]
    return word if word.isprintable() and word and " " not in word else "?"


@dataclass
class Environment:
    """A target environment: its distributions and what the reporter can see there."""

    python: str
    distributions: list[Installed]
    marker_environment: dict[str, str] = field(default_factory=dict)
    #: ``{"ipython"|"site": {"path": str|None, "present": bool, "mtime": float|None}}``
    activation: dict[str, dict[str, Any]] = field(default_factory=dict)
    server_extensions: list[str] = field(default_factory=list)
    prefix: str = ""
    #: Metadata directories the probe could not read (not judged, so never candidates).
    unreadable: list[str] = field(default_factory=list)

    def present(self, method: str) -> bool:
        return bool(self.activation.get(method, {}).get("present"))

    def site_covers(self, span: Window | None) -> bool:
        """``install site`` is present and (given a window) was there when it started."""
        site = self.activation.get("site", {})
        if not site.get("present"):
            return False
        mtime = site.get("mtime")
        return span is None or (isinstance(mtime, (int, float)) and mtime <= span.start)


def interpreter(python: str | None, prefix: str | None) -> str:
    """The interpreter of the target environment."""
    if python:
        return python
    if prefix:
        for candidate in ("bin/python3", "bin/python", "Scripts/python.exe", "python.exe"):
            path = Path(prefix) / candidate
            if path.exists():
                return str(path)
        raise InspectError(f"{prefix}: no Python interpreter in this prefix")
    return sys.executable


def inspect(python: str, timeout: float = 120.0) -> Environment:
    """The distributions installed in ``python``'s environment, and its activation files."""
    from popularity_contest import activation
    from popularity_contest.inprocess import classify

    env = {**os.environ, "PYTHON_POPCONTEST_DISABLE": "1"}
    command = [
        python,
        "-I",
        str(_PROBE),
        str(Path(classify.__file__).resolve()),
        activation.STARTUP_NAME,
        activation.PTH_NAME,
    ]
    try:
        done = subprocess.run(  # noqa: S603 - the operator's chosen interpreter, our probe
            command, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise InspectError(f"{python}: {error}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise InspectError(f"{python}: listing distributions failed: {last}")
    try:
        document = json.loads(done.stdout)
        return Environment(
            python=str(document["python"]),
            prefix=str(document["prefix"]),
            distributions=[Installed.from_probe(item) for item in document["distributions"]],
            marker_environment={str(k): str(v) for k, v in document["marker_environment"].items()},
            activation=dict(document["activation"]),
            server_extensions=[str(m) for m in document["server_extensions"]],
            unreadable=[str(u) for u in document.get("unreadable", [])],
        )
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise InspectError(f"{python}: unexpected output: {error!r}") from None
