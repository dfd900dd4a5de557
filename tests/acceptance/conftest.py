"""The acceptance test runs only from ``make acceptance`` / ``make acceptance-reduced``.

Those targets set ``POPCON_ACCEPTANCE`` (``full`` or ``reduced``); without it the default
suite (``python -m pytest``) collects nothing here, because building the environment
downloads 150+ distributions and the run takes minutes.
"""

from __future__ import annotations

import os

MODE = os.environ.get("POPCON_ACCEPTANCE", "")

if MODE not in ("full", "reduced"):
    collect_ignore_glob = ["test_*.py"]
