"""``popularity-contest unused``: installed distributions nobody imported, and why the rest stay.

The target interpreter (``--python``, ``--prefix``, default this one) is run once with
``INSPECT`` (``-I``: no user site, no ``PYTHONPATH``; reporter disabled), which lists its
installed distributions with ``importlib.metadata``: normalised name, version, top-level
packages, requirements (extras dropped, markers evaluated when ``packaging`` is there,
kept otherwise), whether it provides command-line entry points or Jupyter extensions. The
reporter never does this; only this command and the page do.

Verdicts, first match wins:

``used``
    one of its top-level packages was imported in the window;
``infrastructure``
    what the kernel or server needs, which a user never imports after the reporter starts:
    ``ipykernel``, ``pip``, ``setuptools``, ``wheel`` and popularity-contest itself,
    distributions providing ``console_scripts``/``gui_scripts`` entry points, Jupyter server
    extensions (enabled in ``etc/jupyter`` or registered by entry point) and distributions
    shipping JupyterLab/notebook extensions; and everything these require, transitively;
``dependency``
    required, transitively, by a used distribution;
``unused``
    none of the above: a removal candidate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from popularity_contest.errors import PopconError

VERDICTS = ("used", "infrastructure", "dependency", "unused")
ALWAYS_INFRASTRUCTURE = frozenset({"ipykernel", "pip", "setuptools", "wheel", "popularity-contest"})

# Runs in the target interpreter (any Python >= 3.8): standard library only, prints JSON.
INSPECT = r"""
import glob, json, os, re, sys
from importlib import metadata
try:
    from packaging.markers import Marker
except Exception:
    Marker = None

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

def tops(dist):
    text = dist.read_text("top_level.txt")
    names = set(text.split()) if text else set()
    if not names:
        for f in dist.files or ():
            parts = f.parts
            if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith(
                (".dist-info", ".egg-info", ".data", ".pth")
            ):
                continue
            first = parts[0] if len(parts) > 1 else parts[0].split(".", 1)[0]
            if first.isidentifier():
                names.add(first)
    return sorted(n for n in names if n.isidentifier() and not n.startswith("_"))

def requires(dist):
    found = set()
    for text in dist.requires or ():
        spec, _, marker = text.partition(";")
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
        if not match:
            continue
        marker = marker.strip()
        if "extra" in marker:
            continue
        if marker and Marker is not None:
            try:
                if not Marker(marker).evaluate():
                    continue
            except Exception:
                pass
        found.add(norm(match.group(1)))
    return sorted(found)

extension_modules = set()
for pattern in ("jupyter_server_config.d/*.json", "jupyter_notebook_config.d/*.json"):
    for path in glob.glob(os.path.join(sys.prefix, "etc", "jupyter", pattern)):
        try:
            with open(path, encoding="utf-8") as f:
                config = json.load(f)
        except Exception:
            continue
        for app in ("ServerApp", "NotebookApp"):
            for key in ("jpserver_extensions", "nbserver_extensions"):
                for module, enabled in (config.get(app, {}).get(key) or {}).items():
                    if enabled:
                        extension_modules.add(module.split(".")[0])

seen = {}
for dist in metadata.distributions():
    try:
        name = dist.metadata.get("Name")
    except Exception:  # unreadable metadata: not a distribution we can judge
        name = None
    if not name:
        continue
    key = norm(name)
    if key in seen:
        continue
    groups = {ep.group for ep in dist.entry_points}
    files = [str(f).replace(os.sep, "/") for f in dist.files or ()]
    packages = tops(dist)
    seen[key] = {
        "distribution": key,
        "version": dist.version,
        "packages": packages,
        "requires": requires(dist),
        "scripts": bool(groups & {"console_scripts", "gui_scripts"}),
        "jupyter_extension": bool(
            groups & {"jupyter_serverproxy_servers", "jupyter_server.extension"}
            or extension_modules.intersection(packages)
            or any("share/jupyter/labextensions/" in f or "share/jupyter/nbextensions/" in f
                   or "etc/jupyter/" in f for f in files)
        ),
    }
json.dump(sorted(seen.values(), key=lambda d: d["distribution"]), sys.stdout)
"""


class InspectError(PopconError):
    """The target interpreter could not be inspected."""


@dataclass
class Installed:
    distribution: str  # PEP 503 normalised
    version: str
    packages: list[str]
    requires: list[str]
    scripts: bool = False
    jupyter_extension: bool = False


@dataclass
class Verdict:
    distribution: str
    version: str
    packages: list[str]
    imports: float
    verdict: str
    reason: str
    required_by: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "distribution": self.distribution,
            "version": self.version,
            "packages": self.packages,
            "imports": int(self.imports) if self.imports.is_integer() else self.imports,
            "verdict": self.verdict,
            "reason": self.reason,
            "required_by": self.required_by,
        }


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


def inspect(python: str, timeout: float = 120.0) -> list[Installed]:
    """The distributions installed in ``python``'s environment."""
    env = {**os.environ, "PYTHON_POPCONTEST_DISABLE": "1"}
    try:
        done = subprocess.run(  # noqa: S603 - the operator's chosen interpreter, our script
            [python, "-I", "-c", INSPECT],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise InspectError(f"{python}: {error}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise InspectError(f"{python}: listing distributions failed: {last}")
    try:
        items = json.loads(done.stdout)
        return [Installed(**item) for item in items]
    except (ValueError, TypeError) as error:
        raise InspectError(f"{python}: unexpected output: {error}") from None


def _closure(roots: Iterable[str], requires: Mapping[str, Sequence[str]]) -> set[str]:
    found: set[str] = set()
    todo = [r for r in roots if r in requires]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        todo.extend(r for r in requires[name] if r in requires and r not in found)
    return found


def judge(installed: Sequence[Installed], imports: Mapping[str, float]) -> list[Verdict]:
    """A verdict per distribution, given imports per top-level package in the window."""
    requires = {d.distribution: d.requires for d in installed}
    required_by: dict[str, list[str]] = {}
    for dist in installed:
        for name in dist.requires:
            required_by.setdefault(name, []).append(dist.distribution)
    counts = {
        d.distribution: sum((imports.get(p, 0.0) for p in d.packages), 0.0) for d in installed
    }
    used = {name for name, count in counts.items() if count > 0}
    roots: dict[str, str] = {}
    for dist in installed:
        if dist.distribution in ALWAYS_INFRASTRUCTURE:
            roots[dist.distribution] = "kernel, installer or reporter"
        elif dist.scripts:
            roots[dist.distribution] = "provides command-line entry points"
        elif dist.jupyter_extension:
            roots[dist.distribution] = "Jupyter server or frontend extension"
    infrastructure = _closure(roots, requires)
    needed = _closure(used, requires) - used
    verdicts = []
    for dist in installed:
        name = dist.distribution
        users = sorted(required_by.get(name, []))
        if name in used:
            verdict, reason = "used", "imported"
        elif name in infrastructure:
            verdict = "infrastructure"
            reason = roots.get(name) or "required by " + ", ".join(
                sorted(u for u in users if u in infrastructure)
            )
        elif name in needed:
            verdict = "dependency"
            reason = "required by " + ", ".join(
                sorted(u for u in users if u in used or u in needed)
            )
        else:
            verdict, reason = "unused", "not imported"
        verdicts.append(
            Verdict(name, dist.version, dist.packages, counts[name], verdict, reason, users)
        )
    order = {v: i for i, v in enumerate(VERDICTS)}
    verdicts.sort(key=lambda v: (order[v.verdict], -v.imports, v.distribution))
    return verdicts


def imports_per_package(
    packages: Mapping[tuple[str, str], float],
) -> dict[str, float]:
    found: dict[str, float] = {}
    for (_namespace, package), count in packages.items():
        found[package] = found.get(package, 0.0) + count
    return found


def analyse(python: str, source_packages: Mapping[tuple[str, str], float]) -> list[Verdict]:
    return judge(inspect(python), imports_per_package(source_packages))
