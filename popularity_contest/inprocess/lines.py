"""The statsd line format, as the reporter writes it.

The code lives in :mod:`popularity_contest.inprocess` (its ``__init__``), the one module
the reporter loads at activation (each module costs ~0.33 M instructions in every
process); this module keeps the import path for the commands, the collector and the tests.
"""

from popularity_contest.inprocess import (
    MAX_COMPONENT_LENGTH,
    MAX_PREFIX_LENGTH,
    counter_line,
    is_safe_component,
    is_safe_prefix,
    pack,
    package_name,
    sibling,
)

__all__ = [
    "MAX_COMPONENT_LENGTH",
    "MAX_PREFIX_LENGTH",
    "counter_line",
    "is_safe_component",
    "is_safe_prefix",
    "pack",
    "package_name",
    "sibling",
]
