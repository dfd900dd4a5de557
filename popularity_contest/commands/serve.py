"""``popularity-contest serve``: flags -> :class:`Config` -> :class:`Server`."""

from __future__ import annotations

import argparse
import logging
import sys

from popularity_contest.collector.server import Server
from popularity_contest.collector.settings import Config


def configure_logging() -> None:
    logger = logging.getLogger("popularity_contest")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s popularity-contest serve: %(levelname)s %(message)s")
        )
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def run(args: argparse.Namespace) -> int:
    """The ``serve`` subcommand."""
    configure_logging()
    return Server(Config.from_args(args)).run()
