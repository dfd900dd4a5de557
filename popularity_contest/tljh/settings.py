"""What the operator configures: TLJH's directories and the ``popularity_contest`` section.

``Paths`` follows ``TLJH_INSTALL_PREFIX`` as TLJH's own code does (``/opt/tljh`` by
default). ``Settings`` is the ``popularity_contest:`` section of TLJH's ``config.yaml``
(``tljh-config set popularity_contest.KEY VALUE`` writes it), read by ``load_settings`` and
checked key by key. ``TLJHPluginError`` is the error every step of the plugin raises for the
operator: its message names the setting or the step, and what to do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from popularity_contest.collector import settings as serve_settings
from popularity_contest.inprocess import settings as reporter_settings

SECTION = "popularity_contest"  # the top-level key of TLJH's config.yaml
DEFAULT_INSTALL_PREFIX = "/opt/tljh"
DEFAULT_MIN_PROCESSES = 5
DEFAULT_HTTP_PORT = 9102
ACCESS_CHOICES = ("users", "admins")


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
