"""Every environment variable the reporter reads, with its default.

The code lives in :mod:`popularity_contest.inprocess` (its ``__init__``), the one module
the reporter loads at activation (each module costs ~0.33 M instructions in every
process); this module keeps the import path for the commands, the collector and the tests.
"""

from popularity_contest.inprocess import (
    COUNT_DIRECT,
    COUNT_DISTRIBUTIONS,
    COUNT_LOCAL,
    COUNTED,
    DEBUG,
    DEFAULT_HOST,
    DEFAULT_MAX_DATAGRAM,
    DEFAULT_PORT,
    DEFAULT_PREFIX,
    DISABLE,
    EAGER,
    ENV_PREFIX,
    FALSE_WORDS,
    HOST,
    MAX_DATAGRAM,
    MAX_HOST_LENGTH,
    MAX_MAX_DATAGRAM,
    MIN_MAX_DATAGRAM,
    PORT,
    PREFIX,
    TRUE_WORDS,
    ReporterConfig,
    flag,
    reporter_config,
)

__all__ = [
    "COUNTED",
    "COUNT_DIRECT",
    "COUNT_DISTRIBUTIONS",
    "COUNT_LOCAL",
    "DEBUG",
    "DEFAULT_HOST",
    "DEFAULT_MAX_DATAGRAM",
    "DEFAULT_PORT",
    "DEFAULT_PREFIX",
    "DISABLE",
    "EAGER",
    "ENV_PREFIX",
    "FALSE_WORDS",
    "HOST",
    "MAX_DATAGRAM",
    "MAX_HOST_LENGTH",
    "MAX_MAX_DATAGRAM",
    "MIN_MAX_DATAGRAM",
    "PORT",
    "PREFIX",
    "TRUE_WORDS",
    "ReporterConfig",
    "flag",
    "reporter_config",
]
