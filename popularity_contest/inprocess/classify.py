"""Which imported names count as packages, and which installed distribution provides them.

A top-level name counts only if all of these hold:

* it is an ASCII identifier, not private (``_*``, which includes ``__main__``), not in the
  standard library and not built in;
* its module is in ``sys.modules`` and really lives where its name says: the package
  directory or module file is called ``<name>`` (so ``sys.modules["secret"] = numpy`` does
  not send ``secret``);
* that place is directly inside a *site directory* of this interpreter (the environment's
  site-packages/dist-packages, or the user site);
* an installed distribution in that site directory provides it (see *ownership* below), and
  that distribution was not installed from the user's own files: a local directory, a local
  archive (``file:`` URL), an editable checkout or a VCS URL (PEP 610 ``direct_url.json``),
  unless ``count_local`` asks for those. With ``count_local``, an editable install whose
  module lives outside the site directory (PEP 660, ``setup.py develop``) counts too.

Ownership uses whatever metadata the distribution has, cheapest first: its name
(``numpy`` -> ``numpy-2.1.dist-info``), the file lists of distributions whose names contain
the module's (``dateutil`` -> ``python_dateutil``: ``top_level.txt``, ``RECORD``,
``installed-files.txt``), then every file list of that one site directory, then
``conda-meta/*.json``. A module in a site directory that holds a distribution without any
file list (Debian's egg-info and RECORD-less dist-info) is counted even when no owner is
found, because it most likely is that distribution's; a directory whose every
distribution lists its files leaves an unclaimed module uncounted (a file copied there by
hand). The slow paths live in :mod:`popularity_contest.inprocess.layouts`, imported only
when a name is not found by its name.

Modules are read without running any of their code: only the module's own ``__dict__``
(``__spec__``, ``__file__``), never ``getattr`` on the module, so a lazily loaded module
(``importlib.util.LazyLoader``) stays unloaded. Everything is cached in memory; nothing is
written. Standard library only; file reads are binary, so no codec is loaded.
"""

import os
import sys
from itertools import compress, repeat

from popularity_contest.inprocess import _listing as directory_listing

# Only for annotations: `collections.abc` is not loaded at start-up and costs ~1 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

#: Where a counted package lives.
SITE = "site"
USER = "user"

_NOT_PACKAGES = frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names)
META_SUFFIXES = (".dist-info", ".egg-info")
_MAX_READ = 1 << 22


def normalize(name: str) -> str:
    """PEP 503 normalisation: lower case, runs of ``-``, ``_`` and ``.`` become one ``-``."""
    text = name.lower().replace("_", "-").replace(".", "-")
    while "--" in text:
        text = text.replace("--", "-")
    return text


def top_level(name: object) -> "str | None":
    """The top-level part of a module name, or None for anything that cannot count."""
    if type(name) is not str:
        return None
    top = name.partition(".")[0]
    if not top or top[0] == "_" or not top.isascii() or not top.isidentifier():
        return None
    if top in _NOT_PACKAGES:
        return None
    return top


def read(path: str, limit: int = _MAX_READ) -> "bytes | None":
    """The first ``limit`` bytes of a file, or None if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError:
        return None


class Distribution:
    """One ``*.dist-info`` or ``*.egg-info`` entry of a site directory (or a conda record)."""

    __slots__ = ("_direct", "_top_level", "listed", "name", "path", "site")

    def __init__(self, site: str, entry: str) -> None:
        self.site = site
        self.path = os.path.join(site, entry)
        stem = entry.rsplit(".", 1)[0]
        if entry.endswith(".dist-info"):  # <name>-<version>.dist-info
            self.name = normalize(stem.rpartition("-")[0] or stem)
        else:  # <name>-<version>[-py3.X].egg-info, with '-' in the name escaped as '_'
            self.name = normalize(stem.split("-", 1)[0])
        self._direct: bytes | bool | None = False  # False: not read yet
        self._top_level: frozenset[str] | None = None
        #: True once a file list (top_level.txt, RECORD, installed-files.txt) was found.
        self.listed = False

    def direct_url(self) -> "bytes | None":
        """The PEP 610 ``direct_url.json`` text, if the installer wrote one."""
        if self._direct is False:
            self._direct = read(os.path.join(self.path, "direct_url.json"), 1 << 16)
        return self._direct  # type: ignore[return-value]  # bytes or None once read

    def is_local(self) -> bool:
        """Installed from the user's own files: a directory (editable or not), a ``file:``
        archive, or a VCS checkout (PEP 610)."""
        data = self.direct_url()
        return data is not None and (
            b'"dir_info"' in data or b'"vcs_info"' in data or b'"file:' in data
        )

    def top_level(self) -> frozenset[str]:
        """The top-level names this distribution installs, from whatever list it has
        (read by ``layouts.listed_names``: only the slow paths and ``unused`` ask)."""
        if self._top_level is None:
            from popularity_contest.inprocess import layouts

            self._top_level = layouts.listed_names(self)
        return self._top_level


class SiteDirectory:
    """The distributions installed in one site directory, listed once."""

    __slots__ = ("_by_name", "_entries", "_owner", "kind", "layouts", "path")

    def __init__(self, path: str, kind: str) -> None:
        self.path = path
        self.kind = kind
        self._entries: list[str] | None = None
        self._by_name: dict[str, list[Distribution]] | None = None
        self._owner: dict[str, Distribution | None] = {}
        #: Slow-path state kept by :mod:`popularity_contest.inprocess.layouts`.
        self.layouts: object = None

    def metadata_entries(self, fresh: bool = False) -> "list[str]":
        if self._entries is None or fresh:
            entries = os.listdir(self.path) if fresh else list(directory_listing(self.path))
            # map/compress loop in C: site-packages of a shared image holds ~1000 entries.
            keep = map(str.endswith, entries, repeat(META_SUFFIXES))
            self._entries = list(compress(entries, keep))
        return self._entries

    def _named(self, key: str) -> "Distribution | None":
        """The distribution whose normalised name is ``key``, found without an index.

        Metadata directories are ``<name>-<version>.dist-info`` with the name's ``-`` and
        ``.`` written as ``_`` (case kept), so a cheap prefix test finds the candidates and
        only those are parsed: most processes import a few packages named like their
        distributions, and this keeps the common case well under a millisecond.
        """
        stem = key.replace("-", "_")
        size = len(stem)
        for entry in self.metadata_entries():
            if entry[size : size + 1] == "-" and (
                entry[:size].lower().replace("-", "_").replace(".", "_") == stem
            ):
                dist = Distribution(self.path, entry)
                if dist.name == key:
                    return dist
        return None

    def distributions(self) -> "dict[str, list[Distribution]]":
        if self._by_name is None:
            self._by_name = {}
            for entry in self.metadata_entries():
                dist = Distribution(self.path, entry)
                self._by_name.setdefault(dist.name, []).append(dist)
        return self._by_name

    def owner(self, name: str) -> "Distribution | None":
        """The distribution that installs top-level ``name`` here, if any."""
        if name in self._owner:
            return self._owner[name]
        found = self._find(name)
        if (
            found is not None
            and found.path.endswith(META_SUFFIXES)
            and not os.path.isdir(found.path)
        ):
            # The import system's listing is older than the directory (a clock of 1-2 s on
            # some file systems): a distribution replaced since, maybe by a local copy. Read
            # the directory itself and decide again.
            try:
                self.metadata_entries(fresh=True)
            except OSError:
                return None
            self._by_name, self._owner, self.layouts = None, {}, None
            found = self._find(name)
        self._owner[name] = found
        return found

    def _find(self, name: str) -> "Distribution | None":
        # The distribution is named like the package (numpy, six, requests); else the file
        # lists say (python-dateutil -> dateutil), read by the slow paths.
        found = self._named(normalize(name))
        if found is None:
            from popularity_contest.inprocess import layouts

            found = layouts.listed_owner(self, name)
        return found


def module_dict(module: object) -> "dict[str, object] | None":
    """A module's own namespace, read without running any of its attribute hooks."""
    try:
        namespace = object.__getattribute__(module, "__dict__")
    except Exception:  # no __dict__ (an odd object in sys.modules)
        return None
    return namespace if type(namespace) is dict else None


def module_location(module: object) -> "tuple[str | None, list[str]]":
    """``(file, search locations)`` of a module, from its ``__dict__`` only.

    ``file`` is the module's origin (``__init__.py`` of a regular package, ``six.py``, an
    extension module), None for a namespace package, a built-in or an odd object. The
    search locations of a namespace package are read from what is already computed
    (``_NamespacePath._path``), never recalculated, which could run path hooks.
    """
    namespace = module_dict(module)
    if namespace is None:
        return None, []
    spec = namespace.get("__spec__")
    origin: object = None
    locations: object = None
    if spec is not None:
        try:
            spec_dict = object.__getattribute__(spec, "__dict__")
            if type(spec_dict) is dict:  # a subclass's `get` would be user code
                origin = spec_dict.get("origin")
                locations = spec_dict.get("submodule_search_locations")
        except Exception:  # a spec without __dict__: ignore it
            pass
    if type(origin) is not str or origin in ("built-in", "frozen", "namespace"):
        origin = namespace.get("__file__")
    found: list[str] = []
    if locations is not None and type(locations) is not list:
        try:
            locations = object.__getattribute__(locations, "_path")
        except Exception:  # not a _NamespacePath: do not iterate what we do not know
            locations = None
    if type(locations) is list:
        found = [p for p in locations[:8] if type(p) is str]
    return (origin if type(origin) is str else None), found


def module_place(name: str, module: object) -> "tuple[str, bool] | None":
    """``(directory holding top-level module name, is a namespace package)``, if the module
    really is ``name`` (its file or directory is called ``name``)."""
    origin, locations = module_location(module)
    if origin is not None:
        directory, filename = os.path.split(origin)
        # A regular package is <site>/<name>/__init__.py. Only the file name tells: a module
        # may set submodule_search_locations itself (six.py sets it to []).
        if filename.startswith("__init__."):
            directory, filename = os.path.split(directory)
            return (directory, False) if filename == name else None
        return (directory, False) if filename.split(".", 1)[0] == name else None
    # A namespace package: no file of its own, one or more <site>/<name> directories.
    for location in locations:
        directory, last = os.path.split(location)
        if last == name:
            return directory, True
    return None


def canonical(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))


def site_directories() -> "dict[str, str]":
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
        found[canonical(path)] = SITE
    if user is not None:
        found[canonical(user)] = USER
    return found


class Classifier:
    """Decides, name by name, whether an imported top-level module counts.

    ``classify(name)`` returns ``(kind, distribution)`` for a countable package, where kind
    is ``SITE`` or ``USER`` and the distribution's ``name`` is ``""`` when the package is
    counted without a known owner, else None. Results are cached for the process's life.
    """

    __slots__ = ("_cache", "_dirs", "_real_sites", "_sites", "count_local", "namespaces")

    def __init__(self, count_local: bool = False, sites: "Mapping[str, str] | None" = None) -> None:
        self.count_local = count_local
        self._sites = dict(sites) if sites is not None else None
        self._real_sites: dict[str, str] | None = None
        self._dirs: dict[str, SiteDirectory] = {}
        self._cache: dict[str, tuple[str, Distribution] | None] = {}
        #: Counted namespace packages and the site directory of each.
        self.namespaces: dict[str, SiteDirectory] = {}

    def site(self, directory: str) -> "SiteDirectory | None":
        """The site directory at ``directory``, if it is one of this interpreter's."""
        if self._sites is None:
            self._sites = site_directories()
        path = canonical(directory)
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

    def sites(self) -> "list[SiteDirectory]":
        """Every site directory of this interpreter."""
        if self._sites is None:
            self._sites = site_directories()
        return [s for s in map(self.site, list(self._sites)) if s is not None]

    def classify(
        self, name: str, modules: "Mapping[str, object] | None" = None
    ) -> "tuple[str, Distribution] | None":
        if name in self._cache:
            return self._cache[name]
        module = (sys.modules if modules is None else modules).get(name)
        result: tuple[str, Distribution] | None = None
        place = module_place(name, module) if module is not None else None
        site = self.site(place[0]) if place is not None else None
        if site is not None and place is not None:
            dist = site.owner(name)
            if dist is not None and (self.count_local or not dist.is_local()):
                result = (site.kind, dist)
                if place[1]:
                    self.namespaces[name] = site
        elif place is not None and self.count_local:
            from popularity_contest.inprocess import layouts

            result = layouts.editable_owner(self, name, place[0])
        self._cache[name] = result
        return result

    def namespace_owners(self, name: str, modules: "Mapping[str, object]") -> "set[str]":
        """Distributions whose files were imported under counted namespace package ``name``
        (``google.protobuf`` -> ``protobuf``): their normalised names."""
        site = self.namespaces.get(name)
        if site is None:
            return set()
        from popularity_contest.inprocess import layouts

        return layouts.namespace_owners(self, site, name, modules)

    def distribution_of_file(self, path: str) -> "Distribution | None":
        """The installed distribution whose file list holds ``path`` (a module's file)."""
        from popularity_contest.inprocess import layouts

        return layouts.distribution_of_file(self, path)


def new_top_level(before: "Iterable[object]", after: "Iterable[object]") -> "set[str]":
    """Top-level names that could count, present in ``after`` but not in ``before``."""
    seen = {top_level(name) for name in before}
    found = {top_level(name) for name in after}
    found.difference_update(seen)
    found.discard(None)
    return found  # type: ignore[return-value]  # None was discarded just above
