"""Which imported names count as packages, and which installed distribution provides them.

A top-level name counts only if all of these hold:

* it is an ASCII identifier, not private (``_*``, which includes ``__main__``), not in the
  standard library and not built in;
* its module is in ``sys.modules`` and really lives where its name says: the package
  directory or module file is called ``<name>`` (so ``sys.modules["secret"] = numpy`` does
  not send ``secret``);
* that place is directly inside a *site directory* of this interpreter (the environment's
  site-packages/dist-packages, or the user site);
* an installed distribution in that site directory provides it, and that distribution was
  not installed from a local directory or a VCS checkout (PEP 610 ``direct_url.json`` with
  ``dir_info`` or ``vcs_info``, which covers editable installs), unless counting those was
  asked for.

Ownership is worked out only for the names actually imported: first by matching the name
against the distributions' own names (``numpy`` -> ``numpy-2.1.dist-info``), then by
reading the file lists of the few distributions whose names contain it (``dateutil`` ->
``python_dateutil``), and only if both fail by reading the file lists of the rest of that
one site directory, once per process. Everything is cached in memory; nothing is written.

This module runs inside users' processes: it imports nothing beyond ``os`` and ``sys``, and
it never triggers an import (file reads are binary, so no codec is loaded).
"""

from __future__ import annotations

import os
import sys

# Only for annotations: `collections.abc` is not loaded at start-up and costs ~1 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

#: Where a counted package lives.
SITE = "site"
USER = "user"

_NOT_PACKAGES = frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names)
_META_SUFFIXES = (".dist-info", ".egg-info")


def normalize(name: str) -> str:
    """PEP 503 normalisation: lower case, runs of ``-``, ``_`` and ``.`` become one ``-``."""
    text = name.lower().replace("_", "-").replace(".", "-")
    while "--" in text:
        text = text.replace("--", "-")
    return text


def top_level(name: object) -> str | None:
    """The top-level part of a module name, or None for anything that cannot count."""
    if type(name) is not str:
        return None
    top = name.partition(".")[0]
    if not top or top[0] == "_" or not top.isascii() or not top.isidentifier():
        return None
    if top in _NOT_PACKAGES:
        return None
    return top


class Distribution:
    """One ``*.dist-info`` or ``*.egg-info`` entry of a site directory."""

    __slots__ = ("_top_level", "local", "name", "path")

    def __init__(self, path: str, entry: str) -> None:
        self.path = path
        stem = entry.rsplit(".", 1)[0]
        if entry.endswith(".dist-info"):  # <name>-<version>.dist-info
            self.name = normalize(stem.rpartition("-")[0] or stem)
        else:  # <name>-<version>[-py3.X].egg-info, with '-' in the name escaped as '_'
            self.name = normalize(stem.split("-", 1)[0])
        self.local: bool | None = None
        self._top_level: frozenset[str] | None = None

    def is_local(self) -> bool:
        """Installed from a local directory or VCS (PEP 610), editable installs included."""
        if self.local is None:
            data = _read(os.path.join(self.path, "direct_url.json"))
            self.local = data is not None and (b'"dir_info"' in data or b'"vcs_info"' in data)
        return self.local

    def top_level(self) -> frozenset[str]:
        """The top-level names this distribution installs (from top_level.txt or RECORD)."""
        if self._top_level is None:
            names: set[str] = set()
            listed = _read(os.path.join(self.path, "top_level.txt"))
            if listed is not None:
                names.update(line.strip() for line in listed.decode("utf-8", "replace").split())
            record = None if names else _read(os.path.join(self.path, "RECORD"))
            if record is None and not names:
                record = _read(os.path.join(self.path, "installed-files.txt"))
            if record is not None:
                for line in record.decode("utf-8", "replace").splitlines():
                    path = line.split(",", 1)[0].replace("\\", "/")
                    first = path.split("/", 1)[0]
                    if "/" not in path:
                        first = first.split(".", 1)[0]  # six.py, ujson.cpython-311-*.so
                    if first and first != ".." and not first.endswith(_META_SUFFIXES):
                        names.add(first)
            self._top_level = frozenset(names)
        return self._top_level


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read(1 << 20)
    except OSError:
        return None


class SiteDirectory:
    """The distributions installed in one site directory, listed once."""

    __slots__ = ("_by_name", "_entries", "_owner", "_scanned", "kind", "path")

    def __init__(self, path: str, kind: str) -> None:
        self.path = path
        self.kind = kind
        self._entries: list[str] | None = None
        self._by_name: dict[str, list[Distribution]] | None = None
        self._owner: dict[str, Distribution | None] = {}
        self._scanned = False

    def _metadata_entries(self) -> list[str]:
        if self._entries is None:
            try:
                entries = os.listdir(self.path)
            except OSError:
                entries = []
            self._entries = [entry for entry in entries if entry.endswith(_META_SUFFIXES)]
        return self._entries

    def _named(self, key: str) -> Distribution | None:
        """The distribution whose normalised name is ``key``, found without an index.

        Metadata directories are ``<name>-<version>.dist-info`` with the name's ``-`` and
        ``.`` written as ``_`` (case kept), so a cheap prefix test finds the candidates and
        only those are parsed: most processes import a few packages named like their
        distributions, and this keeps the common case well under a millisecond.
        """
        stem = key.replace("-", "_")
        size = len(stem)
        for entry in self._metadata_entries():
            if entry[size : size + 1] == "-" and (
                entry[:size].lower().replace("-", "_").replace(".", "_") == stem
            ):
                dist = Distribution(os.path.join(self.path, entry), entry)
                if dist.name == key:
                    return dist
        return None

    def _distributions(self) -> dict[str, list[Distribution]]:
        if self._by_name is None:
            self._by_name = {}
            for entry in self._metadata_entries():
                dist = Distribution(os.path.join(self.path, entry), entry)
                self._by_name.setdefault(dist.name, []).append(dist)
        return self._by_name

    def owner(self, name: str) -> Distribution | None:
        """The distribution that installs top-level ``name`` here, if any."""
        if name in self._owner:
            return self._owner[name]
        key = normalize(name)
        # 1. The distribution is named like the package (numpy, six, requests).
        found = self._named(key)
        # 2. A distribution whose name contains it says so in its file list
        #    (python-dateutil -> dateutil, PyYAML -> yaml, google-auth -> google).
        by_name = self._distributions() if found is None else {}
        if found is None:
            for dist_name, dists in by_name.items():
                if key in dist_name:
                    found = next((d for d in dists if name in d.top_level()), None)
                    if found is not None:
                        break
        # 3. Read every file list of this directory, once (PIL, sklearn, bs4).
        if found is None and not self._scanned:
            self._scanned = True
            for dists in by_name.values():
                for dist in dists:
                    for top in dist.top_level():
                        self._owner.setdefault(top, dist)
            found = self._owner.get(name)
        self._owner[name] = found
        return found


def _module_place(name: str, module: object) -> str | None:
    """The directory holding top-level module ``name``, if the module really is ``name``."""
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None) if spec is not None else None
    locations = getattr(spec, "submodule_search_locations", None) if spec is not None else None
    if type(origin) is not str or origin in ("built-in", "frozen", "namespace"):
        origin = None
    if origin is None:
        origin = getattr(module, "__file__", None)
        if type(origin) is not str:
            origin = None
    if origin is not None:
        directory, filename = os.path.split(origin)
        # A regular package is <site>/<name>/__init__.py. Only the file name tells: a module
        # may set submodule_search_locations itself (six.py sets it to []).
        if filename.startswith("__init__."):
            directory, filename = os.path.split(directory)
            return directory if filename == name else None
        return directory if filename.split(".", 1)[0] == name else None
    if locations is None:
        return None
    # A namespace package: no file of its own, one or more <site>/<name> directories.
    for location in list(locations)[:8]:
        if type(location) is str:
            directory, last = os.path.split(location)
            if last == name:
                return directory
    return None


def _canonical(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))


def site_directories() -> dict[str, str]:
    """This interpreter's site directories, each mapped to ``SITE`` or ``USER``."""
    found: dict[str, str] = {}
    site = sys.modules.get("site")
    paths: list[str] = []
    user: str | None = None
    try:
        if site is not None:
            paths = list(site.getsitepackages())
            if site.ENABLE_USER_SITE:
                user = site.getusersitepackages()
    except Exception:  # a replaced or broken `site` module: fall back to sys.path below
        paths = []
    if not paths:
        paths = [
            p
            for p in sys.path
            if type(p) is str and os.path.basename(p) in ("site-packages", "dist-packages")
        ]
    for path in paths:
        found[_canonical(path)] = SITE
    if user is not None:
        found[_canonical(user)] = USER
    return found


class Classifier:
    """Decides, name by name, whether an imported top-level module counts.

    ``classify(name)`` returns ``(kind, distribution)`` for a countable package, where kind
    is ``SITE`` or ``USER``, else None. Results are cached for the life of the process.
    """

    __slots__ = ("_cache", "_dirs", "_real_sites", "_sites", "count_local")

    def __init__(self, count_local: bool = False, sites: Mapping[str, str] | None = None) -> None:
        self.count_local = count_local
        self._sites = dict(sites) if sites is not None else None
        self._real_sites: dict[str, str] | None = None
        self._dirs: dict[str, SiteDirectory] = {}
        self._cache: dict[str, tuple[str, Distribution] | None] = {}

    def _site(self, directory: str) -> SiteDirectory | None:
        if self._sites is None:
            self._sites = site_directories()
        path = _canonical(directory)
        kind = self._sites.get(path)
        if kind is None:
            # Symbolic links (/usr/local -> /opt/..., conda's envs): compare real paths, which
            # costs system calls, so only for places not found as they are written.
            if self._real_sites is None:
                self._real_sites = {os.path.realpath(p): k for p, k in self._sites.items()}
            path = os.path.realpath(path)
            kind = self._real_sites.get(path)
            if kind is None:
                return None
        site = self._dirs.get(path)
        if site is None:
            site = self._dirs[path] = SiteDirectory(path, kind)
        return site

    def classify(
        self, name: str, modules: Mapping[str, object] | None = None
    ) -> tuple[str, Distribution] | None:
        if name in self._cache:
            return self._cache[name]
        module = (sys.modules if modules is None else modules).get(name)
        result: tuple[str, Distribution] | None = None
        directory = _module_place(name, module) if module is not None else None
        site = self._site(directory) if directory is not None else None
        if site is not None:
            dist = site.owner(name)
            if dist is not None and (self.count_local or not dist.is_local()):
                result = (site.kind, dist)
        self._cache[name] = result
        return result


def new_top_level(before: Iterable[object], after: Iterable[object]) -> set[str]:
    """Top-level names that could count, present in ``after`` but not in ``before``."""
    seen = {top_level(name) for name in before}
    found = {top_level(name) for name in after}
    found.difference_update(seen)
    found.discard(None)
    return found  # type: ignore[return-value]  # None was discarded just above
