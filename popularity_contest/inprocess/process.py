"""What kind of program this process is, its IPython shell, and the collector's address.

The code lives in :mod:`popularity_contest.inprocess` (its ``__init__``), the one module
the reporter loads at activation (each module costs ~0.33 M instructions in every
process); this module keeps the import path for the commands, the collector and the tests.
"""

from popularity_contest.inprocess import (
    MAX_FRAMES,
    PLUMBING,
    SHELL,
    Address,
    ipython_shell,
    main_program,
    program_kind,
    user_code_running,
)

__all__ = [
    "MAX_FRAMES",
    "PLUMBING",
    "SHELL",
    "Address",
    "ipython_shell",
    "main_program",
    "program_kind",
    "user_code_running",
]
