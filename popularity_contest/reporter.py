"""Importing this module switches reporting on in the current process.

This is the line the installed files run (``popularity-contest install``: an IPython startup
file, a ``.pth``): ``import popularity_contest.reporter``. Everything it does lives in
:mod:`popularity_contest.inprocess`, where importing a module activates nothing; this module
only calls :func:`~popularity_contest.inprocess.setup_reporter` once and re-exports
the public API.
"""

from popularity_contest.inprocess import (
    get_used_libraries,
    get_used_packages,
    is_active,
    setup_reporter,
    stop,
)

__all__ = ["get_used_libraries", "get_used_packages", "is_active", "setup_reporter", "stop"]

# Runs inside someone else's process (a .pth, an IPython startup file): whatever goes wrong,
# stay silent. A broken configuration disables reporting instead (see `check`).
try:
    setup_reporter()
except Exception:
    pass
