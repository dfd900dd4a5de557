"""The Littlest JupyterHub (TLJH) plugin: the reporter for every user, the collector for the hub.

TLJH finds this module through the ``tljh`` entry-point group and calls its pluggy hooks:

* ``tljh_extra_hub_pip_packages`` (installer): this project with the ``collector`` and ``hub``
  extras, for the hub environment (``/opt/tljh/hub``) that runs the collector;
* ``tljh_extra_user_pip_packages`` (installer): this project for the user environment
  (``/opt/tljh/user``), where users' kernels run the reporter;
* ``tljh_post_install`` (installer, after the packages): ``install ipython`` (and
  ``install site`` when configured, ``uninstall site`` when not) with the user
  environment's interpreter;
* ``tljh_custom_jupyterhub_config`` (each hub start): the collector as a managed hub service
  behind the hub's login, appended to TLJH's services (its idle culler stays), and a role
  entry that lets users open it. Nothing TLJH set is replaced.

Settings live in TLJH's own configuration file (``tljh-config set popularity_contest.KEY
VALUE`` writes ``/opt/tljh/config/config.yaml``); see ``Settings`` for the keys. The paths
follow ``TLJH_INSTALL_PREFIX`` as TLJH's own do (``/opt/tljh`` by default).

Which package the hooks install: by default exactly the one this plugin came from, so the hub
and the users run the same version. Installed from a file, a directory or a URL (``--plugin
/root/popularity_contest-0.5.0-py3-none-any.whl``), that same location (``pip`` records it in
``direct_url.json``); installed from an index, ``popularity-contest==<this version>``, which
fails loudly where the index does not have it. ``package_spec`` overrides this; a
specification that would accept 0.4.1 (the previous project of this name on PyPI, without
this plugin or the collector) is refused.

The installer hooks raise ``TLJHPluginError`` with a message for the operator (TLJH's
installer stops there). The JupyterHub configuration hook never raises: an exception in
``jupyterhub_config.py`` would stop the hub, and TLJH would restart it in a loop; it logs
why the collector is left out instead.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy

from popularity_contest.collector import settings as serve_settings
from popularity_contest.inprocess import settings as reporter_settings

# TLJH's installer logs through the "tljh" logger (its file /opt/tljh/installer.log and the
# terminal); a child logger's records go there too.
log = logging.getLogger("tljh.popularity_contest")

hookimpl = pluggy.HookimplMarker("tljh")

DISTRIBUTION = "popularity-contest"
SERVICE_NAME = "popularity-contest"
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"
SECTION = "popularity_contest"  # the top-level key of TLJH's config.yaml
HUB_EXTRAS = ("collector", "hub")
#: The previous project of this name on PyPI: no collector, no plugin, no `install` command.
OLD_RELEASE = "0.4.1"

DEFAULT_INSTALL_PREFIX = "/opt/tljh"
DEFAULT_MIN_PROCESSES = 5
DEFAULT_HTTP_PORT = 9102
ACCESS_CHOICES = ("users", "admins")

#: Modules the collector service needs in the hub environment (``[collector,hub]``).
SERVICE_MODULES = (
    "popularity_contest.collector.server",
    "prometheus_client",
    "yaml",
    "jupyterhub.services.auth",
)


class TLJHPluginError(RuntimeError):
    """A setting or an installation step failed; the message says which and what to do."""


@dataclass(frozen=True)
class Paths:
    """TLJH's directories (``TLJH_INSTALL_PREFIX``, ``/opt/tljh`` by default)."""

    prefix: Path

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Paths:
        environ = os.environ if environ is None else environ
        return cls(Path(environ.get("TLJH_INSTALL_PREFIX") or DEFAULT_INSTALL_PREFIX))

    @property
    def config_file(self) -> Path:
        """What ``tljh-config`` writes."""
        return self.prefix / "config" / "config.yaml"

    @property
    def user_python(self) -> Path:
        """The user environment's interpreter (users' kernels run it)."""
        return self.prefix / "user" / "bin" / "python"

    @property
    def state_dir(self) -> Path:
        """The collector's directory under TLJH's state directory."""
        return self.prefix / "state" / "popularity-contest"

    @property
    def db(self) -> Path:
        return self.state_dir / serve_settings.DB_FILE_NAME


@dataclass(frozen=True)
class Settings:
    """The ``popularity_contest:`` section of TLJH's config.yaml (every key optional).

    ``package_spec`` (str): what pip installs, as a requirement (``popularity-contest==0.5.0``,
    ``popularity-contest @ https://.../x.whl``), an absolute path or a URL; default: the
    plugin's own origin (see the module's docstring). ``install_site`` (bool, default false):
    also ``install site``, the reporter in every Python process of the user environment, not
    only IPython and Jupyter kernels. ``collector`` (bool, default true): run the collector as
    a hub service. ``min_processes`` (int, default 5): the page's privacy threshold.
    ``http_port`` (int, default 9102) and ``statsd_port`` (int, default 8125): the collector's
    loopback ports. ``access`` (``users``, the default, or ``admins``): who may open the page.
    """

    package_spec: str | None = None
    install_site: bool = False
    collector: bool = True
    min_processes: int = DEFAULT_MIN_PROCESSES
    http_port: int = DEFAULT_HTTP_PORT
    statsd_port: int = reporter_settings.DEFAULT_PORT
    access: str = "users"

    @classmethod
    def from_mapping(cls, section: object) -> Settings:
        """Check and convert the section; ``TLJHPluginError`` names the key that is wrong."""
        if section is None:
            return cls()
        if not isinstance(section, Mapping):
            raise TLJHPluginError(f"{SECTION} in config.yaml must be a mapping of settings")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(str(key) for key in section if key not in known)
        if unknown:
            raise TLJHPluginError(
                f"unknown setting {SECTION}.{unknown[0]} in config.yaml "
                f"(known: {', '.join(sorted(known))})"
            )
        values: dict[str, Any] = {}
        for key, value in section.items():
            default = cls.__dataclass_fields__[key].default
            values[key] = _convert(key, value, default)
        settings = cls(**values)
        if settings.access not in ACCESS_CHOICES:
            raise TLJHPluginError(
                f"{SECTION}.access: {settings.access!r} is not one of {', '.join(ACCESS_CHOICES)}"
            )
        for key in ("http_port", "statsd_port"):
            if not 0 < getattr(settings, key) < 65536:
                raise TLJHPluginError(f"{SECTION}.{key}: not a port number (1-65535)")
        if settings.min_processes < 1:
            raise TLJHPluginError(f"{SECTION}.min_processes: must be at least 1")
        return settings


def _convert(key: str, value: object, default: object) -> object:
    # tljh-config stores "true"/"false" as booleans and digits as integers already; hand
    # edits may leave strings.
    where = f"{SECTION}.{key}"
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "1", "on"):
            return True
        if text in ("false", "no", "0", "off"):
            return False
        raise TLJHPluginError(f"{where}: expected true or false, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        raise TLJHPluginError(f"{where}: expected a whole number, got {value!r}")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise TLJHPluginError(f"{where}: expected text, got {value!r}")
    return value.strip()


def load_settings(paths: Paths | None = None) -> Settings:
    """Read the ``popularity_contest`` section of TLJH's config.yaml (no file: defaults)."""
    paths = paths or Paths.from_environ()
    try:
        import yaml
    except ImportError:
        raise TLJHPluginError(
            "PyYAML is missing from the hub environment: install 'popularity-contest[tljh]'"
        ) from None
    try:
        with paths.config_file.open(encoding="utf-8") as file:
            document = yaml.safe_load(file)
    except FileNotFoundError:
        return Settings()
    except (OSError, yaml.YAMLError) as error:
        raise TLJHPluginError(f"cannot read {paths.config_file}: {error}") from None
    if document is None:
        return Settings()
    if not isinstance(document, Mapping):
        raise TLJHPluginError(f"{paths.config_file}: not a mapping of settings")
    return Settings.from_mapping(document.get(SECTION))


# --- Which package to install -------------------------------------------------------------
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


# --- The hooks ------------------------------------------------------------------------------
@hookimpl
def tljh_extra_user_pip_packages() -> list[str]:
    """The reporter for the user environment."""
    return [requirement(package_spec(load_settings()))]


@hookimpl
def tljh_extra_hub_pip_packages() -> list[str]:
    """The collector and the hub login for the hub environment."""
    settings = load_settings()
    extras = HUB_EXTRAS if settings.collector else ()
    return [requirement(package_spec(settings), extras)]


def _run(command: list[str]) -> None:
    log.info("running %s", " ".join(command))
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    except OSError as error:
        raise TLJHPluginError(f"cannot run {command[0]}: {error}") from None
    if done.returncode != 0:
        raise TLJHPluginError(
            f"{' '.join(command)} exited with {done.returncode}:\n{done.stderr.strip()}"
        )
    if done.stdout.strip():
        log.info("%s", done.stdout.strip())


def post_install(paths: Paths, settings: Settings) -> None:
    """Turn the reporter on in the user environment; make the collector's state directory."""
    # -I: the package must come from the environment, not from the current directory.
    command = [str(paths.user_python), "-I", "-m", "popularity_contest"]
    _run([*command, "install", "ipython"])
    _run([*command, "install" if settings.install_site else "uninstall", "site"])
    if settings.collector:
        paths.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)


@hookimpl
def tljh_post_install() -> None:
    """After TLJH installed the packages: ``install ipython`` (and ``site``) for users."""
    post_install(Paths.from_environ(), load_settings())


def service(paths: Paths, settings: Settings, python: str) -> dict[str, Any]:
    """The collector as a managed JupyterHub service run by ``python`` (the hub's)."""
    http = f"127.0.0.1:{settings.http_port}"
    return {
        "name": SERVICE_NAME,
        "url": f"http://{http}",  # a url makes the hub register an OAuth client: the login
        "command": [
            python,
            "-m",
            "popularity_contest",
            "serve",
            "--db",
            str(paths.db),
            "--http",
            http,
            "--statsd",
            f"127.0.0.1:{settings.statsd_port}",
            "--environment",
            str(paths.user_python),
        ],
        "environment": {
            serve_settings.SERVE_MIN_PROCESSES: str(settings.min_processes),
            serve_settings.SERVE_METRICS_AUTH: "1",
        },
        "display": True,
        "oauth_no_confirm": True,
    }


def _default_user_scopes() -> list[str]:
    # Redefining the `user` role replaces JupyterHub's default scopes for it: start from them.
    try:
        from jupyterhub.roles import get_default_roles  # type: ignore[import-untyped]

        for role in get_default_roles():
            if role.get("name") == "user":
                return list(role.get("scopes", ["self"]))
    except ImportError:
        pass
    return ["self"]


def grant_users(c: Any) -> None:
    """Add the service's access scope to the ``user`` role every hub user has."""
    roles = c.JupyterHub.load_roles
    existing = [r for r in roles if isinstance(r, dict)] if isinstance(roles, list) else []
    for role in existing:
        if role.get("name") == "user":
            scopes = role.setdefault("scopes", _default_user_scopes())
            if ACCESS_SCOPE not in scopes:
                scopes.append(ACCESS_SCOPE)
            return
    roles.append({"name": "user", "scopes": [*_default_user_scopes(), ACCESS_SCOPE]})


def configure_hub(c: Any, paths: Paths, settings: Settings, python: str) -> None:
    """Append the service (and the role, the reporters' port) to the hub's configuration."""
    services = c.JupyterHub.services
    if isinstance(services, list) and any(
        isinstance(s, dict) and s.get("name") == SERVICE_NAME for s in services
    ):
        log.warning("a service named %s is already configured: left as it is", SERVICE_NAME)
        return
    services.append(service(paths, settings, python))
    if settings.access == "users":
        grant_users(c)
    if settings.statsd_port != reporter_settings.DEFAULT_PORT:
        environment = c.Spawner.environment
        if isinstance(environment, dict):
            environment.setdefault(reporter_settings.PORT, str(settings.statsd_port))
        else:
            environment.update({reporter_settings.PORT: str(settings.statsd_port)})


def missing_modules() -> list[str]:
    """What the collector service needs but this interpreter cannot import."""
    missing = []
    for name in SERVICE_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ImportError:  # a parent package is missing
            found = False
        if not found:
            missing.append(name)
    return missing


@hookimpl
def tljh_custom_jupyterhub_config(c: Any) -> None:
    """At each hub start: the collector as a hub service, when it can run."""
    try:
        settings = load_settings()
        if not settings.collector:
            return
        missing = missing_modules()
        if missing:
            log.error(
                "popularity-contest: collector service left out, %s cannot import %s "
                "(re-run TLJH's installer to install the hub packages)",
                sys.executable,
                ", ".join(missing),
            )
            return
        configure_hub(c, Paths.from_environ(), settings, sys.executable)
    except Exception as error:
        # An exception here stops the hub, and TLJH would restart it in a loop.
        log.error("popularity-contest: collector service left out: %s", error)  # noqa: TRY400
