"""The table of ``popularity-contest serve``'s settings: a flag, a variable and a default each.

``SETTINGS`` is the one table: ``add_arguments`` builds the ``serve`` flags from it (their
``--help`` shows the variable and the default), ``collector.settings.Config.from_args``
reads it (flags win over ``PYTHON_POPCONTEST_SERVE_*`` variables, which win over defaults;
each value checked there) and the reference documentation lists it. ``default_db_path`` is
where the store lives when ``--db`` is not given.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass

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
#: Each setting by its ``dest`` (the argparse attribute ``Config.from_args`` reads).
BY_DEST = {setting.dest: setting for setting in SETTINGS}

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
