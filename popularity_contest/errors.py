"""One exception base for every failure popularity-contest expects and can explain.

Each subclass lives beside the code that raises it (``StoreError`` in the store,
``SourceError`` in the answers' sources, ...). The command line catches ``PopconError``
once (:func:`popularity_contest.commands.main.main`), prints ``popularity-contest COMMAND:
message`` on one line and exits with ``exit_status``; anything else is a bug and keeps its
traceback. The reporter never raises at all, so nothing here is imported in users'
processes.
"""

from __future__ import annotations


class PopconError(Exception):
    """An expected failure; ``str(error)`` is a one-line message naming what to change."""

    #: The command's exit status when this reaches the command line.
    exit_status = 1


class UsageError(PopconError):
    """A flag or variable that cannot be used; the message names it."""

    exit_status = 2
