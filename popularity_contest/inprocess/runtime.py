"""The import observer, exit, fork and IPython hooks: the reporter's public functions.

The code lives in :mod:`popularity_contest.inprocess` (its ``__init__``), the one module
the reporter loads at activation (each module costs ~0.33 M instructions in every
process); this module keeps the import path for the commands and the tests.
"""

from popularity_contest.inprocess import (
    EXIT_WAIT,
    MAX_COUNTED,
    get_used_libraries,
    get_used_packages,
    is_active,
    setup_reporter,
    stop,
)

__all__ = [
    "EXIT_WAIT",
    "MAX_COUNTED",
    "get_used_libraries",
    "get_used_packages",
    "is_active",
    "setup_reporter",
    "stop",
]
