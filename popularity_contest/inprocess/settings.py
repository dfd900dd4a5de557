"""Every environment variable popularity-contest reads, with its default, in one place.

The reporter imports this module inside users' processes at start-up, so it uses nothing but
the standard library modules every interpreter has already loaded (no ``dataclasses``, no
``typing`` at run time). Reading the configuration never raises: a bad value disables
reporting instead (``ReporterConfig.problem`` says why, for ``popularity-contest check``).
"""

import os

from popularity_contest import names
from popularity_contest.inprocess import lines as wire

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
COUNT_DIRECT = ENV_PREFIX + "COUNT_DIRECT"
#: Set by the reporter itself (``<pid>:<package>,...``): what this process already sent, for
#: an image that replaces it with ``exec`` (same pid). Never set it yourself.
COUNTED = ENV_PREFIX + "COUNTED"

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 8125
DEFAULT_PREFIX = names.DEFAULT_PREFIX
# 512 bytes fits any network path without fragmentation (it is also what the `statsd`
# package's pipeline uses); 65,000 is just under the largest UDP payload.
DEFAULT_MAX_DATAGRAM = 512
MIN_MAX_DATAGRAM = 64
MAX_MAX_DATAGRAM = 65000
MAX_HOST_LENGTH = 253

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def flag(environ: "Mapping[str, str]", name: str, default: bool) -> bool:
    """A yes/no variable: ``1 true yes on`` or ``0 false no off`` (any case), else ``default``."""
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
        "count_direct",
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
        count_direct: bool = False,
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
        #: Also count the packages the process's own code imports (issue 15).
        self.count_direct = count_direct
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


def reporter_config(environ: "Mapping[str, str] | None" = None) -> ReporterConfig:
    """Read the reporter's configuration; never raises."""
    env = os.environ if environ is None else environ
    debug = flag(env, DEBUG, False)
    disabled = flag(env, DISABLE, False)
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
        eager=flag(env, EAGER, True),
        count_distributions=flag(env, COUNT_DISTRIBUTIONS, False),
        count_local=flag(env, COUNT_LOCAL, False),
        count_direct=flag(env, COUNT_DIRECT, False),
        debug=debug,
        disabled=disabled or problem is not None,
        problem=problem,
    )
