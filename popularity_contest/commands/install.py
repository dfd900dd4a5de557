"""``popularity-contest install|uninstall ipython|site`` (the work: ``activation``)."""

from __future__ import annotations

import argparse
import json

from popularity_contest.activation import install, uninstall
from popularity_contest.answers.formats import columns


def run(args: argparse.Namespace) -> int:
    """Entry point of ``popularity-contest install`` and ``uninstall``."""
    action = install if args.command == "install" else uninstall
    outcome = action(args.method, args.prefix)
    if args.format == "json":
        print(json.dumps(outcome.as_dict(), indent=2))
    else:
        print(
            columns(
                [["METHOD", "ACTION", "PATH"], [outcome.method, outcome.action, str(outcome.path)]]
            )
        )
        for note in outcome.notes:
            print(f"note: {note}")
    return 0
