"""``popularity-contest serve``'s settings read once into a :class:`Config`, each one checked.

The table of settings (each a flag, a ``PYTHON_POPCONTEST_SERVE_*`` variable and a default)
is :mod:`popularity_contest.collector.options`; ``Config.from_args`` reads it (flags win over
variables, which win over defaults). A setting that cannot be used raises
:class:`ConfigError`, whose message names the flag and the variable.

Login (``--login``): ``auto`` (the default) requires a JupyterHub login for the page and the
API exactly when JupyterHub runs ``serve`` as a service, which JupyterHub marks with
``JUPYTERHUB_SERVICE_NAME`` (a user's own server and its terminals carry other
``JUPYTERHUB_*`` variables, but not that one); ``jupyterhub`` requires it always; ``none``
never. Under a login, ``/metrics`` needs a hub token too unless ``--open-metrics``. When a
login is asked for but its settings are missing, blank or inconsistent, ``serve`` refuses to
start: it never serves the page without the login it was configured for.
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from popularity_contest.collector.options import (  # re-exported: serve's settings table
    BY_DEST,
    DB_FILE_NAME,
    DEFAULT_FLUSH_INTERVAL,
    DEFAULT_HOURLY_RETENTION_DAYS,
    DEFAULT_MAX_SERIES,
    DEFAULT_MIN_PROCESSES,
    DEFAULT_RCVBUF,
    DEFAULT_SERVE_HTTP,
    DEFAULT_SERVE_MAX_DATAGRAM,
    DEFAULT_SERVE_STATSD,
    LOGINS,
    SERVE_DB,
    SERVE_ENVIRONMENT,
    SERVE_FLUSH_INTERVAL,
    SERVE_HOURLY_RETENTION,
    SERVE_HTTP,
    SERVE_LOGIN,
    SERVE_MAPPING,
    SERVE_MAX_DATAGRAM,
    SERVE_MAX_SERIES,
    SERVE_METRICS_AUTH,
    SERVE_MIN_PROCESSES,
    SERVE_NO_STATSD,
    SERVE_OPEN_METRICS,
    SERVE_RCVBUF,
    SERVE_STATSD,
    SETTINGS,
    Setting,
    add_arguments,
    default_db_path,
)
from popularity_contest.errors import UsageError

__all__ = [
    "API_TOKEN",
    "DB_FILE_NAME",
    "DEFAULT_FLUSH_INTERVAL",
    "DEFAULT_HOURLY_RETENTION_DAYS",
    "DEFAULT_MAX_SERIES",
    "DEFAULT_MIN_PROCESSES",
    "DEFAULT_RCVBUF",
    "DEFAULT_SERVE_HTTP",
    "DEFAULT_SERVE_MAX_DATAGRAM",
    "DEFAULT_SERVE_STATSD",
    "HUB_REQUIRED",
    "HUB_VARIABLES",
    "LOGINS",
    "SERVE_DB",
    "SERVE_ENVIRONMENT",
    "SERVE_FLUSH_INTERVAL",
    "SERVE_HOURLY_RETENTION",
    "SERVE_HTTP",
    "SERVE_LOGIN",
    "SERVE_MAPPING",
    "SERVE_MAX_DATAGRAM",
    "SERVE_MAX_SERIES",
    "SERVE_METRICS_AUTH",
    "SERVE_MIN_PROCESSES",
    "SERVE_NO_STATSD",
    "SERVE_OPEN_METRICS",
    "SERVE_RCVBUF",
    "SERVE_STATSD",
    "SERVICE_NAME",
    "SETTINGS",
    "Config",
    "ConfigError",
    "Setting",
    "add_arguments",
    "default_db_path",
    "parse_address",
]

#: What JupyterHub sets for a managed service; the name marks "run by a hub as a service".
SERVICE_NAME = "JUPYTERHUB_SERVICE_NAME"
API_TOKEN = "JUPYTERHUB_API_TOKEN"  # noqa: S105 - a variable name, not a secret
HUB_VARIABLES = (
    API_TOKEN,
    "JUPYTERHUB_API_URL",
    "JUPYTERHUB_BASE_URL",
    "JUPYTERHUB_CLIENT_ID",
    "JUPYTERHUB_HOST",
    "JUPYTERHUB_OAUTH_ACCESS_SCOPES",
    "JUPYTERHUB_OAUTH_CALLBACK_URL",
    "JUPYTERHUB_OAUTH_SCOPES",
    "JUPYTERHUB_PUBLIC_URL",
    SERVICE_NAME,
    "JUPYTERHUB_SERVICE_PREFIX",
)
#: A hub login cannot work without these.
HUB_REQUIRED = (
    API_TOKEN,
    "JUPYTERHUB_API_URL",
    "JUPYTERHUB_CLIENT_ID",
    "JUPYTERHUB_SERVICE_PREFIX",
)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class ConfigError(UsageError, ValueError):
    """A setting that cannot be used; the message names the flag or variable."""


def parse_address(text: str, what: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6; ``:PORT`` = loopback) -> (host, port).

    Port 0 means any free port. ``:PORT`` is 127.0.0.1, not every interface (where
    statsd_exporter differs): listening beyond loopback is always spelled out.
    """
    host, colon, port_text = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif colon and not host:
        host = "127.0.0.1"
    if not colon or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"{what}: expected HOST:PORT or :PORT, got {text!r}")
    return host, int(port_text)


def _where(setting: Setting) -> str:
    return f"{setting.flag} / {setting.variable}"


def _interpreter(value: str | None, setting: Setting) -> str | None:
    """``value`` as an executable's path (a bare name is looked up on PATH); ConfigError if none."""
    if value is None:
        return None
    path = os.path.expanduser(value)
    if os.sep not in path:
        path = shutil.which(path) or path
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise ConfigError(f"{_where(setting)}: {value!r} is not an executable Python interpreter")
    return path


def _number(text: str, setting: Setting, minimum: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{_where(setting)}: not a number: {text!r}") from None
    if not minimum <= value < float("inf"):  # also refuses nan
        raise ConfigError(f"{_where(setting)}: must be a number of at least {minimum:g}")
    return value


def _hub_settings(
    login: str, environ: Mapping[str, str]
) -> tuple[dict[str, str] | None, list[str]]:
    """(``JUPYTERHUB_*`` settings when a hub login is required, else None; notes to log)."""
    present = {name: environ[name].strip() for name in HUB_VARIABLES if name in environ}
    service = present.get(SERVICE_NAME, "")
    notes: list[str] = []
    if login == "none":
        if service:
            notes.append(
                f"--login none: the page and API are open to anyone who reaches them, although"
                f" JupyterHub runs this as service {service!r}"
            )
        return None, notes
    if login == "auto" and not service:
        if any(present.values()):
            notes.append(
                "JUPYTERHUB_* variables of a user's server seen, but no JUPYTERHUB_SERVICE_NAME:"
                " not a hub service, no login (--login jupyterhub to require one)"
            )
        return None, notes
    why = "--login jupyterhub" if login == "jupyterhub" else f"{SERVICE_NAME}={service!r}"
    missing = [name for name in HUB_REQUIRED if not present.get(name)]
    if missing:
        raise ConfigError(
            f"a JupyterHub login is required ({why}) but {', '.join(missing)}"
            f" {'is' if len(missing) == 1 else 'are'} missing or blank: run serve as a hub"
            " service with a 'url' (c.JupyterHub.services), or --login none to serve without"
            " a login"
        )
    prefix = present["JUPYTERHUB_SERVICE_PREFIX"]
    if not prefix.startswith("/") or not prefix.endswith("/"):
        raise ConfigError(f"JUPYTERHUB_SERVICE_PREFIX: expected /.../, got {prefix!r}")
    if service and not prefix.endswith(f"/services/{service}/"):
        raise ConfigError(
            f"JUPYTERHUB_SERVICE_PREFIX {prefix!r} is not the prefix of service {service!r}"
        )
    callback = present.get("JUPYTERHUB_OAUTH_CALLBACK_URL", "")
    if callback and not urlsplit(callback).path.startswith(prefix):
        raise ConfigError(
            f"JUPYTERHUB_OAUTH_CALLBACK_URL {callback!r} is not under the service prefix"
            f" {prefix!r}: serve answers the login callback only there"
        )
    return {name: value for name, value in present.items() if value}, notes


@dataclass(frozen=True)
class Config:
    """Every setting of the collector, read once."""

    statsd: tuple[str, int] | None  # None: --no-statsd
    http: tuple[str, int]
    db: str
    mapping: str | None  # None: the rules shipped in the package
    environment: str | None  # interpreter whose installed packages the page judges
    flush_interval: float
    hourly_retention_days: float
    max_series: int
    max_datagram: int
    rcvbuf: int
    min_processes: int  # privacy threshold of the page and the JSON/CSV API
    #: ``JUPYTERHUB_*`` settings when a hub login guards page and API, else None.
    hub: Mapping[str, str] | None = None
    metrics_auth: bool = False  # /metrics needs a hub token too
    #: Things worth a log line at start-up (e.g. why there is no login).
    notes: tuple[str, ...] = ()

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, environ: Mapping[str, str] | None = None
    ) -> Config:
        """Flags win over ``PYTHON_POPCONTEST_SERVE_*`` variables, which win over defaults."""
        environ = os.environ if environ is None else environ

        def text(dest: str) -> str | None:
            value = getattr(args, dest, None)
            if value is None or value == "":
                value = environ.get(BY_DEST[dest].variable, "").strip()
            return str(value) if value not in (None, "") else None

        def yes(dest: str) -> bool:
            value = getattr(args, dest, None)
            if value is not None:
                return bool(value)
            setting = BY_DEST[dest]
            raw = environ.get(setting.variable, "").strip().lower()
            if raw not in _TRUE | _FALSE:
                raise ConfigError(f"{setting.variable}: expected 1 or 0, got {raw!r}")
            return raw in _TRUE

        def number(dest: str, default: float, minimum: float) -> float:
            value = text(dest)
            return default if value is None else _number(value, BY_DEST[dest], minimum)

        login = text("login") or "auto"
        if login not in LOGINS:
            raise ConfigError(f"{_where(BY_DEST['login'])}: one of {', '.join(LOGINS)}")
        hub, notes = _hub_settings(login, environ)
        statsd = None
        if not yes("no_statsd"):
            statsd = parse_address(text("statsd") or DEFAULT_SERVE_STATSD, _where(SETTINGS[0]))
        db = text("db") or default_db_path(environ)
        return cls(
            statsd=statsd,
            http=parse_address(text("http") or DEFAULT_SERVE_HTTP, _where(BY_DEST["http"])),
            db=os.path.expanduser(db),
            mapping=text("mapping"),
            environment=_interpreter(text("environment"), BY_DEST["environment"]),
            flush_interval=number("flush_interval", DEFAULT_FLUSH_INTERVAL, 0.01),
            hourly_retention_days=number("hourly_retention", DEFAULT_HOURLY_RETENTION_DAYS, 1),
            max_series=int(number("max_series", DEFAULT_MAX_SERIES, 1)),
            max_datagram=int(number("max_datagram", DEFAULT_SERVE_MAX_DATAGRAM, 64)),
            rcvbuf=int(number("rcvbuf", DEFAULT_RCVBUF, 4096)),
            min_processes=int(number("min_processes", DEFAULT_MIN_PROCESSES, 1)),
            hub=hub,
            metrics_auth=hub is not None
            and not yes("open_metrics")
            and environ.get(SERVE_METRICS_AUTH, "").strip().lower() not in _FALSE - {""},
            notes=tuple(notes),
        )
