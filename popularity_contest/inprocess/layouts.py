"""The slow paths of ownership, for layouts where a package is not named like its distribution.

:mod:`popularity_contest.inprocess.classify` imports this module only when the cheap path
(a ``*.dist-info`` named like the package) fails, so most processes never load it:

* ``listed_owner``: a distribution whose name contains the package's and lists it
  (``python-dateutil`` -> ``dateutil``), else every file list of the site directory, read
  once, else ``fallback_owner``;
* ``listed_names`` and ``files``: a distribution's file lists (``top_level.txt``, else
  ``RECORD`` or ``installed-files.txt``), behind ``Distribution.top_level``;
* ``egg_files``: Debian/RPM and ``setup.py install`` egg-info lists files in
  ``installed-files.txt`` relative to the egg-info directory (``../bs4/__init__.py``);
* ``fallback_owner``: conda's own records (``<prefix>/conda-meta/*.json``, ``"files"``
  relative to the prefix), then, for a site directory holding a distribution without any
  file list (egg-info with only ``PKG-INFO``, a dist-info whose installer wrote no
  ``RECORD``), an owner without a name: the package counts, no ``library_used`` is sent;
* ``editable_owner`` (only with ``count_local``): an editable install whose module lives
  outside the site directory, found by its ``direct_url.json`` (PEP 660,
  ``"dir_info": {"editable": true}``) or a legacy ``*.egg-link`` file;
* ``namespace_owners``: which distributions' *files* were imported under a namespace
  package shared by several distributions (``google.protobuf`` -> ``protobuf``);
* ``distribution_of_file``: the distribution that installed a given file.

Standard library only (``os``, ``sys``); JSON is scanned, not parsed, so ``json`` is never
imported into the user's process. Reads are bounded.
"""

import os

from popularity_contest.inprocess.classify import (
    META_SUFFIXES,
    Distribution,
    SiteDirectory,
    module_location,
    normalize,
    read,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from popularity_contest.inprocess.classify import Classifier

#: Most bytes read from conda-meta in one process (its records can be large).
MAX_CONDA_BYTES = 32 << 20


class _State:
    """What the slow paths learnt about one site directory."""

    __slots__ = ("conda", "files", "owners")

    def __init__(self) -> None:
        self.conda: dict[str, Distribution] | None = None
        self.files: dict[str | None, dict[str, Distribution]] = {}
        #: Top-level name -> the first distribution listing it, once every list was read.
        self.owners: dict[str, Distribution] | None = None


def _state(site: SiteDirectory) -> _State:
    if not isinstance(site.layouts, _State):
        site.layouts = _State()
    return site.layouts


def _anonymous(site: str, name: str = "", direct: "bytes | None" = None) -> Distribution:
    dist = Distribution(site, "-.dist-info")
    dist.name = name
    dist._direct = direct
    dist.listed = True
    return dist


def listed_names(dist: Distribution) -> "frozenset[str]":
    """The top-level names ``dist`` installs: ``top_level.txt``, else its file list."""
    names: set[str] = set()
    listed = read(os.path.join(dist.path, "top_level.txt"))
    if listed is not None:
        dist.listed = True
        names.update(line.strip() for line in listed.decode("utf-8", "replace").split())
    if not names:
        for path in files(dist):
            first, slash, _rest = path.partition("/")
            if not slash:
                first = first.split(".", 1)[0]  # six.py, ujson.cpython-311-*.so
            if first and first != ".." and not first.endswith(META_SUFFIXES):
                names.add(first)
    return frozenset(names)


def files(dist: Distribution) -> "list[str]":
    """Installed files of ``dist``, relative to the site directory with ``/`` separators."""
    record = read(os.path.join(dist.path, "RECORD"))
    if record is not None:
        dist.listed = True
        return [
            line.split(",", 1)[0].replace("\\", "/")
            for line in record.decode("utf-8", "replace").splitlines()
        ]
    installed = read(os.path.join(dist.path, "installed-files.txt"))
    if installed is None:
        return []
    dist.listed = True
    return egg_files(dist, installed)


def listed_owner(site: SiteDirectory, name: str) -> "Distribution | None":
    """The owner of top-level ``name`` when no distribution of ``site`` is named like it."""
    state = _state(site)
    if state.owners is None:
        # A distribution whose name contains the package's says so in its file list
        # (python-dateutil -> dateutil, PyYAML -> yaml, google-auth -> google).
        key = normalize(name)
        for dist_name, dists in site.distributions().items():
            if key in dist_name:
                found = next((d for d in dists if name in d.top_level()), None)
                if found is not None:
                    return found
        # Every file list of this directory, once; then conda's records, unlisted ones.
        state.owners = {}
        for dists in site.distributions().values():
            for dist in dists:
                for top in dist.top_level():
                    state.owners.setdefault(top, dist)
    return state.owners.get(name) or fallback_owner(site, name)


def egg_files(dist: Distribution, installed: bytes) -> "list[str]":
    """``installed-files.txt`` lines made relative to the site directory."""
    entry = os.path.basename(dist.path)
    found = []
    for raw in installed.decode("utf-8", "replace").splitlines():
        line = raw.strip().replace("\\", "/")
        if line:
            found.append(os.path.normpath(f"{entry}/{line}").replace(os.sep, "/"))
    return found


def _json_strings(data: bytes, key: bytes) -> "list[str]":
    """The string values of ``"key": [...]`` or ``"key": "..."`` in a JSON text (no escapes
    beyond ``\\"`` are expected in paths and names)."""
    start = data.find(b'"' + key + b'"')
    if start < 0:
        return []
    start = data.find(b":", start) + 1
    rest = data[start:].lstrip()
    if rest[:1] == b'"':
        return [rest[1 : rest.find(b'"', 1)].decode("utf-8", "replace")]
    if rest[:1] != b"[":
        return []
    body = rest[1 : rest.find(b"]")]
    return [part.decode("utf-8", "replace") for part in body.split(b'"')[1::2]]


def _conda(site: SiteDirectory) -> "dict[str, Distribution]":
    """Top-level name -> conda package, from ``<prefix>/conda-meta`` above ``site``."""
    state = _state(site)
    if state.conda is not None:
        return state.conda
    state.conda = {}
    prefix = os.path.dirname(os.path.dirname(os.path.dirname(site.path)))
    meta = os.path.join(prefix, "conda-meta")
    try:
        entries = sorted(e for e in os.listdir(meta) if e.endswith(".json"))
    except OSError:
        return state.conda
    relative = os.path.relpath(site.path, prefix).replace(os.sep, "/") + "/"
    budget = MAX_CONDA_BYTES
    for entry in entries:
        data = read(os.path.join(meta, entry), budget)
        if data is None:
            continue
        budget -= len(data)
        names = _json_strings(data, b"name")
        dist = _anonymous(site.path, normalize(names[0]) if names else "")
        for path in _json_strings(data, b"files"):
            if path.startswith(relative):
                first = path[len(relative) :].split("/", 1)
                top = first[0] if len(first) > 1 else first[0].split(".", 1)[0]
                if top and not top.endswith(META_SUFFIXES):
                    state.conda.setdefault(top, dist)
        if budget <= 0:
            break
    return state.conda


def fallback_owner(site: SiteDirectory, name: str) -> "Distribution | None":
    """Called once every file list of ``site`` was read and none claims ``name``."""
    found = _conda(site).get(name)
    if found is not None:
        return found
    for dists in site.distributions().values():
        for dist in dists:
            dist.top_level()
            if not dist.listed:
                return _anonymous(site.path)
    return None


def _local_path(url: str) -> "str | None":
    """The path of a ``file:`` URL (``file:///p``, ``file://localhost/p``), decoded."""
    if not url.startswith("file://"):
        return None
    path = url[len("file://") :]
    if path.startswith("localhost/"):
        path = path[len("localhost") :]
    if not path.startswith("/"):
        return None
    raw = path.encode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i : i + 1] == b"%" and i + 3 <= len(raw):
            try:
                out.append(int(raw[i + 1 : i + 3], 16))
                i += 3
                continue
            except ValueError:
                pass
        out.append(raw[i])
        i += 1
    return os.fsdecode(bytes(out))


def _inside(directory: str, root: str) -> bool:
    root = os.path.normpath(root)
    return directory == root or directory.startswith(root.rstrip(os.sep) + os.sep)


def editable_owner(
    classifier: "Classifier", name: str, directory: str
) -> "tuple[str, Distribution] | None":
    """The editable install whose project directory holds ``directory`` (count_local only)."""
    directory = os.path.normpath(os.path.abspath(directory))
    key = normalize(name)
    for site in classifier.sites():
        for dists in site.distributions().values():
            for dist in dists:
                data = dist.direct_url()
                if data is None or b'"dir_info"' not in data:
                    continue
                urls = _json_strings(data, b"url")
                root = _local_path(urls[0]) if urls else None
                if root is None or not _inside(directory, root):
                    continue
                tops = dist.top_level()
                if name in tops or dist.name == key or not tops - {"__editable__"}:
                    return site.kind, dist
        try:
            links = [e for e in os.listdir(site.path) if e.endswith(".egg-link")]
        except OSError:
            links = []
        for link in links:  # `setup.py develop` / legacy `pip install -e`
            text = read(os.path.join(site.path, link), 4096) or b""
            root = os.fsdecode(text.split(b"\n", 1)[0].strip())
            if root and _inside(directory, root):
                local = b'"dir_info"'
                return site.kind, _anonymous(site.path, normalize(link[: -len(".egg-link")]), local)
    return None


def _file_index(site: SiteDirectory, top: "str | None") -> "dict[str, Distribution]":
    """Installed file (relative, ``/``) -> distribution, for distributions that install
    ``top`` (or all of them when ``top`` is None), built once per site directory."""
    state = _state(site)
    index = state.files.get(top)
    if index is not None:
        return index
    index = state.files[top] = {}
    for dists in site.distributions().values():
        for dist in dists:
            if top is None or top in dist.top_level():
                for path in files(dist):
                    index.setdefault(path, dist)
    return index


def _relative(path: str, root: str) -> "str | None":
    rel = os.path.relpath(os.path.abspath(path), root)
    if rel.startswith(".."):
        return None
    return rel.replace(os.sep, "/")


def namespace_owners(
    classifier: "Classifier", site: SiteDirectory, name: str, modules: "Mapping[str, object]"
) -> "set[str]":
    prefix = name + "."
    index: dict[str, Distribution] | None = None
    found: set[str] = set()
    for module_name in list(modules):
        if type(module_name) is not str or not module_name.startswith(prefix):
            continue
        origin, _locations = module_location(modules.get(module_name))
        rel = _relative(origin, site.path) if origin is not None else None
        if rel is None:
            continue
        if index is None:
            index = _file_index(site, name)
        dist = index.get(rel)
        if dist is not None and dist.name and (classifier.count_local or not dist.is_local()):
            found.add(dist.name)
    return found


def distribution_of_file(classifier: "Classifier", path: str) -> "Distribution | None":
    for site in classifier.sites():
        rel = _relative(path, site.path)
        if rel is not None:
            return _file_index(site, None).get(rel)
    return None


__all__ = [
    "distribution_of_file",
    "editable_owner",
    "egg_files",
    "fallback_owner",
    "files",
    "listed_names",
    "listed_owner",
    "namespace_owners",
]
