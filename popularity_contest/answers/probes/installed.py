"""What is installed in this interpreter's environment, as one JSON document on stdout.

Run by ``popularity-contest unused`` (and the page) with the *target* interpreter::

    python -I installed.py CLASSIFY STARTUP_NAME PTH_NAME

``CLASSIFY`` is the path of ``popularity_contest/inprocess/classify.py``, loaded by path (not
imported as part of ``popularity_contest``, which the target may not have): the top-level
names of a distribution, and whether it was installed from a local directory or a VCS
checkout, follow exactly the rules the reporter counts by. ``STARTUP_NAME`` and
``PTH_NAME`` are the activation files ``popularity-contest install`` writes.

Standard library only; ``-I`` keeps the user site, ``PYTHON*`` variables and the reporter
out. The document::

    {"python": str, "prefix": str,
     "marker_environment": {PEP 508 marker variable: str},
     "activation": {"ipython"|"site": {"path": str|null, "present": bool, "mtime": float|null}},
     "server_extensions": [top-level module enabled in a Jupyter config file],
     "distributions": [{
        "name": str (as in METADATA), "version": str, "installer": str|null (INSTALLER),
        "requires": [Requires-Dist, raw], "packages": [top-level import names],
        "scripts": [console/GUI script names], "entry_point_groups": [str],
        "local": "directory"|"vcs"|"file"|null (PEP 610), "metadata": "dist-info"|"egg-info",
        "record": bool (RECORD, or installed-files.txt for egg-info),
        "location": site directory, "in_prefix": bool (inside sys.prefix),
        "pth_imports": bool (ships a .pth file with an ``import`` line),
        "jupyter": ["labextension"|"nbextension"|"kernelspec"|"config"]}],
     "unreadable": ["<metadata directory>: <error>"]}
"""

from __future__ import annotations

import glob
import importlib
import importlib.util
import json
import os
import pathlib
import platform
import site
import sys
from importlib import metadata
from types import ModuleType
from typing import Any

JUPYTER_DATA = {
    "share/jupyter/labextensions/": "labextension",
    "share/jupyter/nbextensions/": "nbextension",
    "share/jupyter/kernels/": "kernelspec",
    "etc/jupyter/": "config",
}


def load_rules(path: str) -> ModuleType:
    """The reporter's ``classify`` module, loaded from its folder (standard library only).

    The target environment may not have popularity-contest (or another version of it):
    ``popularity_contest`` is set up here as a bare package whose ``__path__`` is the
    command's own folder, and ``popularity_contest.inprocess`` is loaded from there, so
    ``classify`` and what it loads (``layouts``) come from the command's version.
    """
    inprocess = os.path.dirname(os.path.abspath(path))
    package = ModuleType("popularity_contest")
    package.__path__ = [os.path.dirname(inprocess)]
    sys.modules["popularity_contest"] = package
    # The in-process package itself (its start-up module holds helpers classify uses);
    # importing it activates nothing.
    spec = importlib.util.spec_from_file_location(
        "popularity_contest.inprocess",
        os.path.join(inprocess, "__init__.py"),
        submodule_search_locations=[inprocess],
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {inprocess}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["popularity_contest.inprocess"] = module
    spec.loader.exec_module(module)
    return importlib.import_module("popularity_contest.inprocess.classify")


def marker_environment() -> dict[str, str]:
    """The PEP 508 environment markers' values for this interpreter."""
    info = sys.implementation.version
    version = f"{info.major}.{info.minor}.{info.micro}"
    if info.releaselevel != "final":
        version += info.releaselevel[0] + str(info.serial)
    return {
        "implementation_name": sys.implementation.name,
        "implementation_version": version,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def _file(path: str | None) -> dict[str, Any]:
    if path is None:
        return {"path": None, "present": False, "mtime": None}
    try:
        mtime: float | None = os.stat(path).st_mtime
    except OSError:
        mtime = None
    return {"path": path, "present": mtime is not None, "mtime": mtime}


def site_directories() -> list[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    found: list[str] = []
    for entry in sys.path:
        if not entry or not os.path.isdir(entry) or os.path.abspath(entry) == here:
            continue
        if os.path.abspath(entry) not in found:
            found.append(os.path.abspath(entry))
    return found


def activation(startup_name: str, pth_name: str) -> dict[str, dict[str, Any]]:
    startup = os.path.join(sys.prefix, "etc", "ipython", "startup", startup_name)
    try:
        sites = list(site.getsitepackages())
    except Exception:
        sites = []
    pth = next(
        (os.path.join(d, pth_name) for d in sites if os.path.exists(os.path.join(d, pth_name))),
        os.path.join(sites[0], pth_name) if sites else None,
    )
    return {"ipython": _file(startup), "site": _file(pth)}


def server_extensions() -> list[str]:
    """Top-level modules enabled as Jupyter server (or classic notebook) extensions."""
    roots = [os.path.join(sys.prefix, "etc", "jupyter"), "/usr/local/etc/jupyter", "/etc/jupyter"]
    found: set[str] = set()
    for root in roots:
        paths = glob.glob(os.path.join(root, "jupyter_server_config.d", "*.json"))
        paths += glob.glob(os.path.join(root, "jupyter_notebook_config.d", "*.json"))
        paths += [os.path.join(root, "jupyter_server_config.json")]
        paths += [os.path.join(root, "jupyter_notebook_config.json")]
        for path in paths:
            try:
                with open(path, encoding="utf-8") as f:
                    config = json.load(f)
            except (OSError, ValueError):
                continue
            if not isinstance(config, dict):
                continue
            for app in ("ServerApp", "NotebookApp"):
                section = config.get(app)
                if not isinstance(section, dict):
                    continue
                for key in ("jpserver_extensions", "nbserver_extensions"):
                    enabled = section.get(key)
                    if isinstance(enabled, dict):
                        found.update(str(m).split(".")[0] for m, on in enabled.items() if on)
    return sorted(found)


def _local(path: str) -> str | None:
    try:
        with open(os.path.join(path, "direct_url.json"), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if "dir_info" in data:
        return "directory"
    if "vcs_info" in data:
        return "vcs"
    if str(data.get("url", "")).startswith("file:"):
        return "file"
    return None


def _pth_imports(directory: str, files: list[str]) -> bool:
    for name in files:
        if "/" in name or not name.endswith(".pth"):
            continue
        try:
            with open(os.path.join(directory, name), encoding="utf-8", errors="replace") as f:
                lines = f.read(1 << 20).splitlines()
        except OSError:
            continue
        if any(line.startswith(("import ", "import\t")) for line in lines):
            return True
    return False


def describe(rules: ModuleType, directory: str, entry: str, prefix: str) -> dict[str, Any] | None:
    path = os.path.join(directory, entry)
    if not os.path.isdir(path):
        return None  # a bare PKG-INFO file (old distutils): nothing pip can act on
    dist = metadata.PathDistribution(pathlib.Path(path))
    try:
        name = dist.metadata["Name"]
    except Exception:
        name = None
    if not name:
        return None
    try:
        files = [str(f).replace(os.sep, "/") for f in dist.files or ()]
    except Exception:
        files = []
    try:
        groups = [(ep.group, ep.name) for ep in dist.entry_points]
    except Exception:
        groups = []
    installer = (dist.read_text("INSTALLER") or "").strip() or None
    is_dist_info = entry.endswith(".dist-info")
    record = "RECORD" if is_dist_info else "installed-files.txt"
    reporter_view = rules.Distribution(directory, entry)
    packages = sorted(n for n in reporter_view.top_level() if rules.top_level(n) == n)
    real = os.path.realpath(directory)
    return {
        "name": name,
        "version": dist.version or "",
        "installer": installer,
        "requires": list(dist.requires or ()),
        "packages": packages,
        "scripts": sorted({n for g, n in groups if g in ("console_scripts", "gui_scripts")}),
        "entry_point_groups": sorted({g for g, _ in groups}),
        "local": _local(path),
        "metadata": "dist-info" if is_dist_info else "egg-info",
        "record": os.path.isfile(os.path.join(path, record)),
        "location": directory,
        "in_prefix": real == prefix or real.startswith(prefix + os.sep),
        "pth_imports": _pth_imports(directory, files),
        "jupyter": sorted(
            {kind for marker, kind in JUPYTER_DATA.items() if any(marker in f for f in files)}
        ),
    }


def main(argv: list[str]) -> int:
    rules = load_rules(argv[1])
    prefix = os.path.realpath(sys.prefix)
    seen: dict[str, dict[str, Any]] = {}
    unreadable: list[str] = []
    for directory in site_directories():
        try:
            entries = sorted(os.listdir(directory))
        except OSError:
            continue
        for entry in entries:
            if not entry.endswith((".dist-info", ".egg-info")):
                continue
            try:
                found = describe(rules, directory, entry, prefix)
            except Exception as error:  # reported: `unused` warns about it
                unreadable.append(f"{os.path.join(directory, entry)}: {error!r}")
                continue
            if found is not None:
                # The first on sys.path wins, as it does for imports and importlib.metadata.
                seen.setdefault(rules.normalize(found["name"]), found)
    json.dump(
        {
            "python": sys.executable,
            "prefix": sys.prefix,
            "marker_environment": marker_environment(),
            "activation": activation(argv[2], argv[3]),
            "server_extensions": server_extensions(),
            "distributions": [seen[k] for k in sorted(seen)],
            "unreadable": unreadable,
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
