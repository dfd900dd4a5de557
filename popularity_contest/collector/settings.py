"""Every setting of ``popularity-contest serve``: a flag, a ``PYTHON_POPCONTEST_SERVE_*``
variable and a default each, read once into a :class:`Config`.

``SETTINGS`` is the one table: ``add_arguments`` builds the ``serve`` flags from it (their
``--help`` shows the variable and the default), ``Config.from_args`` reads it (flags win over
variables, which win over defaults) and the reference documentation lists it. A setting that
cannot be used raises :class:`ConfigError`, whose message names the flag and the variable.

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
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from popularity_contest.errors import UsageError
from popularity_contest.inprocess.settings import ENV_PREFIX, MAX_MAX_DATAGRAM

SERVE_STATSD = ENV_PREFIX + "SERVE_STATSD"
SERVE_NO_STATSD = ENV_PREFIX + "SERVE_NO_STATSD"
SERVE_HTTP = ENV_PREFIX + "SERVE_HTTP"
SERVE_DB = ENV_PREFIX + "SERVE_DB"
SERVE_MAPPING = ENV_PREFIX + "SERVE_MAPPING"
SERVE_ENVIRONMENT = ENV_PREFIX + "SERVE_ENVIRONMENT"
SERVE_FLUSH_INTERVAL = ENV_PREFIX + "SERVE_FLUSH_INTERVAL"
SERVE_HOURLY_RETENTION = ENV_PREFIX + "SERVE_HOURLY_RETENTION"
SERVE_MAX_SERIES = ENV_PREFIX + "SERVE_MAX_SERIES"
SERVE_MAX_DATAGRAM = ENV_PREFIX + "SERVE_MAX_DATAGRAM"
SERVE_RCVBUF = ENV_PREFIX + "SERVE_RCVBUF"
SERVE_MIN_PROCESSES = ENV_PREFIX + "SERVE_MIN_PROCESSES"
SERVE_LOGIN = ENV_PREFIX + "SERVE_LOGIN"
SERVE_OPEN_METRICS = ENV_PREFIX + "SERVE_OPEN_METRICS"
#: Before --open-metrics: ``0`` opened /metrics under a hub login. Still read, no flag.
SERVE_METRICS_AUTH = ENV_PREFIX + "SERVE_METRICS_AUTH"

DEFAULT_SERVE_STATSD = "127.0.0.1:8125"
DEFAULT_SERVE_HTTP = "127.0.0.1:9102"  # statsd_exporter's port
DEFAULT_FLUSH_INTERVAL = 1.0
DEFAULT_HOURLY_RETENTION_DAYS = 90
DEFAULT_MAX_SERIES = 100_000
DEFAULT_SERVE_MAX_DATAGRAM = MAX_MAX_DATAGRAM
DEFAULT_RCVBUF = 8 * 1024 * 1024
DEFAULT_MIN_PROCESSES = 1
DB_FILE_NAME = "popcon.sqlite3"
LOGINS = ("auto", "jupyterhub", "none")

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


def default_db_path(environ: Mapping[str, str] | None = None) -> str:
    """``$XDG_DATA_HOME/popularity-contest/popcon.sqlite3`` (``~/.local/share`` by default).

    Run as a system service (systemd sets ``STATE_DIRECTORY`` from ``StateDirectory=``, a
    colon-separated list when there are several), the store is ``popcon.sqlite3`` in the first
    of those directories instead: ``/var/lib/popularity-contest/popcon.sqlite3``.
    """
    env = os.environ if environ is None else environ
    state = env.get("STATE_DIRECTORY", "").split(":")[0].strip()
    if state and os.path.isabs(state):
        return os.path.join(state, DB_FILE_NAME)
    data_home = env.get("XDG_DATA_HOME", "").strip()
    if not data_home or not os.path.isabs(data_home):  # the XDG spec ignores relative paths
        data_home = os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data_home, "popularity-contest", DB_FILE_NAME)


class ConfigError(UsageError, ValueError):
    """A setting that cannot be used; the message names the flag or variable."""


@dataclass(frozen=True)
class Setting:
    """One ``serve`` setting: ``--flag`` (``dest`` in argparse), variable, default, help."""

    flag: str
    variable: str
    metavar: str | None  # None: a yes/no flag
    default: str
    help: str
    choices: tuple[str, ...] = ()

    @property
    def dest(self) -> str:
        return self.flag[2:].replace("-", "_")


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "--statsd",
        SERVE_STATSD,
        "HOST:PORT",
        DEFAULT_SERVE_STATSD,
        "UDP address statsd lines are received on (':PORT' means loopback; 0.0.0.0:PORT or"
        " [::]:PORT listen on every interface: anyone who reaches it can add counts)",
    ),
    Setting(
        "--no-statsd",
        SERVE_NO_STATSD,
        None,
        "0",
        "receive nothing: serve the page, the API and /metrics from the store only",
    ),
    Setting(
        "--http",
        SERVE_HTTP,
        "HOST:PORT",
        DEFAULT_SERVE_HTTP,
        "HTTP address of the page, the API, /metrics and /healthz (':PORT' means loopback)",
    ),
    Setting(
        "--db",
        SERVE_DB,
        "PATH",
        "$XDG_DATA_HOME/popularity-contest/" + DB_FILE_NAME,
        "the SQLite store (~/.local/share/... when XDG_DATA_HOME is unset)",
    ),
    Setting(
        "--mapping", SERVE_MAPPING, "FILE", "the packaged rules", "statsd_exporter mapping file"
    ),
    Setting(
        "--environment",
        SERVE_ENVIRONMENT,
        "PYTHON",
        "none",
        "a Python interpreter whose installed packages the page lists as used or unused",
    ),
    Setting(
        "--flush-interval",
        SERVE_FLUSH_INTERVAL,
        "SECONDS",
        f"{DEFAULT_FLUSH_INTERVAL:g}",
        "seconds between commits to the store (the most a SIGKILL can lose)",
    ),
    Setting(
        "--hourly-retention",
        SERVE_HOURLY_RETENTION,
        "DAYS",
        str(DEFAULT_HOURLY_RETENTION_DAYS),
        "days kept at hourly resolution, then rolled up to days",
    ),
    Setting(
        "--max-series",
        SERVE_MAX_SERIES,
        "N",
        str(DEFAULT_MAX_SERIES),
        "distinct series stored at most; beyond, new series are refused (counted, logged;"
        " see `popularity-contest prune`)",
    ),
    Setting(
        "--max-datagram",
        SERVE_MAX_DATAGRAM,
        "BYTES",
        str(DEFAULT_SERVE_MAX_DATAGRAM),
        "larger datagrams are dropped (counted)",
    ),
    Setting(
        "--rcvbuf",
        SERVE_RCVBUF,
        "BYTES",
        str(DEFAULT_RCVBUF),
        "UDP receive buffer asked for (Linux caps it at net.core.rmem_max unless root)",
    ),
    Setting(
        "--min-processes",
        SERVE_MIN_PROCESSES,
        "K",
        str(DEFAULT_MIN_PROCESSES),
        "privacy threshold of the page and API: hide packages reported by fewer than K processes",
    ),
    Setting(
        "--login",
        SERVE_LOGIN,
        "{auto,jupyterhub,none}",
        "auto",
        "who may see the page and API: 'auto' requires a JupyterHub login when JupyterHub runs"
        " serve as a service (JUPYTERHUB_SERVICE_NAME set), 'jupyterhub' always, 'none'"
        " never; incomplete hub settings stop serve",
        LOGINS,
    ),
    Setting(
        "--open-metrics",
        SERVE_OPEN_METRICS,
        None,
        "0",
        "under a hub login, serve /metrics without a hub token (by default Prometheus must"
        " send one with the service's access scope)",
    ),
)
_BY_DEST = {setting.dest: setting for setting in SETTINGS}

EXAMPLE = """\
example:
  popularity-contest serve --http 127.0.0.1:9102 --db /var/lib/popularity-contest/popcon.sqlite3
  PYTHON_POPCONTEST_SERVE_MIN_PROCESSES=5 popularity-contest serve --no-statsd

Every flag has the variable shown; a flag wins over its variable."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``serve`` flags; ``--help`` shows each one's variable and default."""
    for setting in SETTINGS:
        text = f"{setting.help} [${setting.variable}; default {setting.default}]"
        if setting.metavar is None:
            parser.add_argument(setting.flag, action="store_true", default=None, help=text)
        else:
            parser.add_argument(setting.flag, metavar=setting.metavar, help=text)
    parser.epilog = EXAMPLE
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


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
                value = environ.get(_BY_DEST[dest].variable, "").strip()
            return str(value) if value not in (None, "") else None

        def yes(dest: str) -> bool:
            value = getattr(args, dest, None)
            if value is not None:
                return bool(value)
            setting = _BY_DEST[dest]
            raw = environ.get(setting.variable, "").strip().lower()
            if raw not in _TRUE | _FALSE:
                raise ConfigError(f"{setting.variable}: expected 1 or 0, got {raw!r}")
            return raw in _TRUE

        def number(dest: str, default: float, minimum: float) -> float:
            value = text(dest)
            return default if value is None else _number(value, _BY_DEST[dest], minimum)

        login = text("login") or "auto"
        if login not in LOGINS:
            raise ConfigError(f"{_where(_BY_DEST['login'])}: one of {', '.join(LOGINS)}")
        hub, notes = _hub_settings(login, environ)
        statsd = None
        if not yes("no_statsd"):
            statsd = parse_address(text("statsd") or DEFAULT_SERVE_STATSD, _where(SETTINGS[0]))
        db = text("db") or default_db_path(environ)
        return cls(
            statsd=statsd,
            http=parse_address(text("http") or DEFAULT_SERVE_HTTP, _where(_BY_DEST["http"])),
            db=os.path.expanduser(db),
            mapping=text("mapping"),
            environment=text("environment"),
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
