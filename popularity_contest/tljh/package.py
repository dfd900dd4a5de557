"""Which package the plugin's hooks install, as a pip requirement.

By default exactly the one this plugin came from, so the hub and the users run the same
version: installed from a file, a directory or a URL, that same location (``pip`` records it
in ``direct_url.json``, PEP 610); installed from an index, ``popularity-contest==<this
version>``. ``Settings.package_spec`` overrides it; a specification that would accept 0.4.1
(the previous project of this name on PyPI, without this plugin or the collector) is refused.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Mapping
from pathlib import Path

from popularity_contest.tljh.settings import SECTION, Settings, TLJHPluginError

DISTRIBUTION = "popularity-contest"
#: The extras of the hub environment, which runs the collector behind the hub's login.
HUB_EXTRAS = ("collector", "hub")
#: The previous project of this name on PyPI: no collector, no plugin, no `install` command.
OLD_RELEASE = "0.4.1"


def own_origin(distribution: importlib.metadata.Distribution | None = None) -> str:
    """How to install exactly this plugin's distribution again, as a pip requirement.

    From an index: ``popularity-contest==VERSION``; from a file, directory, URL or VCS: that
    location as pip recorded it in ``direct_url.json`` (PEP 610), with the archive's sha256.
    """
    if distribution is None:
        try:
            distribution = importlib.metadata.distribution(DISTRIBUTION)
        except importlib.metadata.PackageNotFoundError:
            raise TLJHPluginError(
                f"{DISTRIBUTION} is not installed as a distribution here: "
                f"set {SECTION}.package_spec with tljh-config"
            ) from None
    text = distribution.read_text("direct_url.json")
    if not text:  # from an index
        return f"{DISTRIBUTION}=={distribution.version}"
    try:
        direct = json.loads(text)
        url = direct["url"]
    except (ValueError, KeyError, TypeError):
        raise TLJHPluginError(
            f"unreadable direct_url.json in {DISTRIBUTION}'s metadata: "
            f"set {SECTION}.package_spec with tljh-config"
        ) from None
    vcs = direct.get("vcs_info")
    if isinstance(vcs, Mapping) and vcs.get("vcs") and vcs.get("commit_id"):
        url = f"{vcs['vcs']}+{url}@{vcs['commit_id']}"
    archive = direct.get("archive_info")
    if isinstance(archive, Mapping):
        hashes = archive.get("hashes")
        if isinstance(hashes, Mapping) and isinstance(hashes.get("sha256"), str):
            url += f"#sha256={hashes['sha256']}"  # pip checks it
    return f"{DISTRIBUTION} @ {url}"


def requirement(spec: str, extras: tuple[str, ...] = ()) -> str:
    """``spec`` (a requirement, an absolute path or a URL) as a pip requirement with ``extras``.

    Raises ``TLJHPluginError`` for another project's name, for text that is no requirement,
    and for a specification that the old 0.4.1 release on PyPI would satisfy.
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    text = spec.strip()
    if text.startswith("/"):
        text = f"{DISTRIBUTION} @ {Path(text).as_uri()}"
    elif "://" in text and "@" not in text.split("://", 1)[0]:
        text = f"{DISTRIBUTION} @ {text}"
    try:
        parsed = Requirement(text)
    except InvalidRequirement as error:
        raise TLJHPluginError(f"{SECTION}.package_spec: {error}") from None
    if canonicalize_name(parsed.name) != DISTRIBUTION:
        raise TLJHPluginError(f"{SECTION}.package_spec names {parsed.name!r}, not {DISTRIBUTION!r}")
    if parsed.url is None and parsed.specifier.contains(OLD_RELEASE, prereleases=True):
        raise TLJHPluginError(
            f"{SECTION}.package_spec {spec!r} would install {DISTRIBUTION} {OLD_RELEASE}, "
            "an older project without the collector or this plugin: name a version >= 0.5 "
            "(popularity-contest>=0.5), a wheel's path or a URL"
        )
    parsed.extras = set(extras)
    return str(parsed)


def package_spec(settings: Settings) -> str:
    """The configured specification, else this plugin's own origin."""
    return settings.package_spec or own_origin()
