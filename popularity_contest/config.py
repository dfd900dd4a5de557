"""Every environment variable popularity-contest reads, with its default, in one place.

The reporter imports this module inside users' processes at start-up, so it uses nothing but
the standard library modules every interpreter has already loaded (no ``dataclasses``, no
``typing`` at run time). Reading the configuration never raises: a bad value disables
reporting instead (``ReporterConfig.problem`` says why, for ``popularity-contest check``).
"""

from __future__ import annotations

import os

from popularity_contest import wire

# Only for annotations: `collections.abc` is not loaded at start-up and costs ~1 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

ENV_PREFIX = "PYTHON_POPCONTEST_"

HOST = ENV_PREFIX + "STATSD_HOST"
PORT = ENV_PREFIX + "STATSD_PORT"
PREFIX = ENV_PREFIX + "STATSD_PREFIX"
DISABLE = ENV_PREFIX + "DISABLE"
DEBUG = ENV_PREFIX + "DEBUG"
MAX_DATAGRAM = ENV_PREFIX + "MAX_DATAGRAM"
EAGER = ENV_PREFIX + "EAGER"
COUNT_DISTRIBUTIONS = ENV_PREFIX + "COUNT_DISTRIBUTIONS"
COUNT_LOCAL = ENV_PREFIX + "COUNT_LOCAL"

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 8125
DEFAULT_PREFIX = "python_popcon.imported_package"
# 512 bytes fits any network path without fragmentation (it is also what the `statsd`
# package's pipeline uses); 65,000 is just under the largest UDP payload.
DEFAULT_MAX_DATAGRAM = 512
MIN_MAX_DATAGRAM = 64
MAX_MAX_DATAGRAM = 65000
MAX_HOST_LENGTH = 253

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = environ.get(name)
    if value is None:
        return default
    value = value.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return default


def _valid_host(host: str) -> bool:
    # Host names and IP literals only: ASCII letters, digits, '.', '-', ':' (IPv6) and '_'.
    # Anything else (spaces, control bytes, non-ASCII, '%' zone ids, brackets) is refused
    # rather than handed to the resolver.
    if not host or len(host) > MAX_HOST_LENGTH or not host.isascii():
        return False
    return all(c.isalnum() or c in ".-:_" for c in host)


class ReporterConfig:
    """The reporter's settings, as read from the environment."""

    __slots__ = (
        "count_distributions",
        "count_local",
        "debug",
        "disabled",
        "eager",
        "host",
        "max_datagram",
        "port",
        "prefix",
        "problem",
    )

    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        prefix: str = DEFAULT_PREFIX,
        max_datagram: int = DEFAULT_MAX_DATAGRAM,
        eager: bool = True,
        count_distributions: bool = False,
        count_local: bool = False,
        debug: bool = False,
        disabled: bool = False,
        problem: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.prefix = prefix
        self.max_datagram = max_datagram
        self.eager = eager
        self.count_distributions = count_distributions
        self.count_local = count_local
        self.debug = debug
        #: True when reporting is off, by choice (``disabled`` without ``problem``) or
        #: because a setting is unusable (``problem`` says which).
        self.disabled = disabled
        self.problem = problem

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"ReporterConfig({fields})"

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}


def reporter_config(environ: Mapping[str, str] | None = None) -> ReporterConfig:
    """Read the reporter's configuration; never raises."""
    env = os.environ if environ is None else environ
    debug = _flag(env, DEBUG, False)
    disabled = _flag(env, DISABLE, False)
    problem = None

    host = env.get(HOST, DEFAULT_HOST).strip()
    if not _valid_host(host):
        problem = f"{HOST} is not a host name or IP address"
        host = DEFAULT_HOST

    port_text = env.get(PORT, str(DEFAULT_PORT)).strip()
    port = DEFAULT_PORT
    if port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536:
        port = int(port_text)
    else:
        problem = problem or f"{PORT} is not a port number (1-65535)"

    prefix = env.get(PREFIX, DEFAULT_PREFIX).strip()
    if not wire.is_safe_prefix(prefix):
        problem = problem or (
            f"{PREFIX} must be dot-separated components of letters, digits, '_' and '-'"
        )
        prefix = DEFAULT_PREFIX

    size_text = env.get(MAX_DATAGRAM, str(DEFAULT_MAX_DATAGRAM)).strip()
    max_datagram = DEFAULT_MAX_DATAGRAM
    if size_text.isascii() and size_text.isdigit():
        max_datagram = min(max(int(size_text), MIN_MAX_DATAGRAM), MAX_MAX_DATAGRAM)
    else:
        problem = problem or f"{MAX_DATAGRAM} is not a number of bytes"

    return ReporterConfig(
        host=host,
        port=port,
        prefix=prefix,
        max_datagram=max_datagram,
        eager=_flag(env, EAGER, True),
        count_distributions=_flag(env, COUNT_DISTRIBUTIONS, False),
        count_local=_flag(env, COUNT_LOCAL, False),
        debug=debug,
        disabled=disabled or problem is not None,
        problem=problem,
    )


# --- The embedded collector (`popularity-contest serve`) ----------------------------------
# Read by popularity_contest.collector.server (which turns them into its Config); command-line
# flags win over these. Listed here so that every variable the project reads is in one file.

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
