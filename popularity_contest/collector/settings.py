"""Every setting of ``popularity-contest serve``: flags, ``PYTHON_POPCONTEST_SERVE_*``
variables and defaults, read once into a :class:`Config`.

Flags win over variables, which win over defaults. A setting that cannot be used raises
:class:`ConfigError`, whose message names the flag or the variable.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass

from popularity_contest.collector.web import hubauth
from popularity_contest.errors import UsageError
from popularity_contest.inprocess.settings import ENV_PREFIX, MAX_MAX_DATAGRAM, flag

SERVE_STATSD = ENV_PREFIX + "SERVE_STATSD"  # HOST:PORT of the UDP statsd listener
SERVE_HTTP = ENV_PREFIX + "SERVE_HTTP"  # HOST:PORT of the HTTP server
SERVE_DB = ENV_PREFIX + "SERVE_DB"  # path of the SQLite store
SERVE_MAPPING = ENV_PREFIX + "SERVE_MAPPING"  # statsd_exporter mapping file
SERVE_ENVIRONMENT = ENV_PREFIX + "SERVE_ENVIRONMENT"  # interpreter whose packages the page lists
SERVE_FLUSH_INTERVAL = ENV_PREFIX + "SERVE_FLUSH_INTERVAL"  # seconds between store commits
SERVE_HOURLY_RETENTION = ENV_PREFIX + "SERVE_HOURLY_RETENTION"  # days kept hourly, then daily
SERVE_MAX_SERIES = ENV_PREFIX + "SERVE_MAX_SERIES"  # distinct series stored at most
SERVE_MAX_DATAGRAM = ENV_PREFIX + "SERVE_MAX_DATAGRAM"  # larger datagrams are dropped
SERVE_RCVBUF = ENV_PREFIX + "SERVE_RCVBUF"  # UDP receive buffer requested, in bytes

DEFAULT_SERVE_STATSD = "127.0.0.1:8125"
DEFAULT_SERVE_HTTP = "127.0.0.1:9102"  # statsd_exporter's port
DEFAULT_FLUSH_INTERVAL = 1.0
DEFAULT_HOURLY_RETENTION_DAYS = 90
DEFAULT_MAX_SERIES = 100_000
DEFAULT_SERVE_MAX_DATAGRAM = MAX_MAX_DATAGRAM
DEFAULT_RCVBUF = 8 * 1024 * 1024
DB_FILE_NAME = "popcon.sqlite3"


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


# --- Reports and the page -------------------------------------------------------------------
# The privacy threshold of the collector's page and JSON/CSV API: packages reported by fewer
# processes are not shown (`report`/`unused` take --min-processes instead).
SERVE_MIN_PROCESSES = ENV_PREFIX + "SERVE_MIN_PROCESSES"
DEFAULT_MIN_PROCESSES = 1

# --- The collector as a JupyterHub service ----------------------------------------------------
# Run by a hub (JUPYTERHUB_API_TOKEN set), the page and API need a hub login; /healthz and
# /metrics stay open unless this is 1 (then Prometheus sends a hub token with the scope).
SERVE_METRICS_AUTH = ENV_PREFIX + "SERVE_METRICS_AUTH"


class ConfigError(UsageError, ValueError):
    """A setting that cannot be used; the message names the flag or variable."""


def parse_address(text: str, what: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) -> (host, port); port 0 = any free port."""
    host, colon, port_text = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"{what}: expected HOST:PORT, got {text!r}")
    return host, int(port_text)


def _number(environ: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}: not a number: {text!r}") from None
    if not value >= minimum:
        raise ConfigError(f"{name}: must be at least {minimum:g}")
    return value


@dataclass(frozen=True)
class Config:
    """Every setting of the collector, read once."""

    statsd: tuple[str, int]
    http: tuple[str, int]
    db: str
    mapping: str | None  # None: the rules shipped in the package
    environment: str | None  # for the page (a later feature): stored, unused here
    flush_interval: float
    hourly_retention_days: float
    max_series: int
    max_datagram: int
    rcvbuf: int
    min_processes: int  # privacy threshold of the page and the JSON/CSV API
    #: ``JUPYTERHUB_*`` settings when a hub runs us (its login then guards page and API).
    hub: Mapping[str, str] | None = None
    metrics_auth: bool = False  # under a hub: /metrics needs a hub token too

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, environ: Mapping[str, str] | None = None
    ) -> Config:
        """Flags win over ``PYTHON_POPCONTEST_SERVE_*`` variables, which win over defaults."""
        environ = os.environ if environ is None else environ

        def setting(flag: str | None, variable: str, default: str | None) -> str | None:
            value = flag if flag else environ.get(variable, "").strip()
            return value or default

        statsd = setting(getattr(args, "statsd", None), SERVE_STATSD, DEFAULT_SERVE_STATSD)
        http = setting(getattr(args, "http", None), SERVE_HTTP, DEFAULT_SERVE_HTTP)
        db = setting(getattr(args, "db", None), SERVE_DB, None) or default_db_path(environ)
        return cls(
            statsd=parse_address(statsd or "", "--statsd"),
            http=parse_address(http or "", "--http"),
            db=os.path.expanduser(db),
            mapping=setting(getattr(args, "mapping", None), SERVE_MAPPING, None),
            environment=setting(getattr(args, "environment", None), SERVE_ENVIRONMENT, None),
            flush_interval=_number(environ, SERVE_FLUSH_INTERVAL, DEFAULT_FLUSH_INTERVAL, 0.01),
            hourly_retention_days=_number(
                environ, SERVE_HOURLY_RETENTION, DEFAULT_HOURLY_RETENTION_DAYS, 1
            ),
            max_series=int(_number(environ, SERVE_MAX_SERIES, DEFAULT_MAX_SERIES, 1)),
            max_datagram=int(_number(environ, SERVE_MAX_DATAGRAM, DEFAULT_SERVE_MAX_DATAGRAM, 64)),
            rcvbuf=int(_number(environ, SERVE_RCVBUF, DEFAULT_RCVBUF, 4096)),
            min_processes=int(_number(environ, SERVE_MIN_PROCESSES, DEFAULT_MIN_PROCESSES, 1)),
            hub=hubauth.hub_environment(environ),
            metrics_auth=flag(environ, SERVE_METRICS_AUTH, False),
        )
