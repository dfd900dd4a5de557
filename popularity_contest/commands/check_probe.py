"""Run by ``popularity-contest check --prefix/--python`` with the target's interpreter, by path.

It prints one JSON object about the environment it runs in: ``python`` (``sys.executable``),
``prefix``, ``version`` (``major.minor.micro``), ``popularity_contest`` (the installed
distribution's version, or None when ``popularity_contest`` cannot be imported there, in
which case the activation files do nothing), ``reporter`` (the reporter's settings as that
environment's own popularity-contest reads them from the environment variables, or None
when its version has no ``popularity_contest.inprocess``) and ``reporter_error`` (why not).

Standard library only and any Python 3: the target may have another version, or none, of
popularity-contest. ``check`` runs it with ``-I``, under which our ``.pth`` line stays
inactive, so the probe itself never reports.
"""

from __future__ import annotations

import json
import os
import sys


def probe() -> dict[str, object]:
    here = os.path.dirname(os.path.abspath(__file__))
    # Without -P (Python < 3.11), the script's folder comes first on sys.path: drop it, so
    # `popularity_contest` is the target's own, never the copy this file belongs to.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    found: dict[str, object] = {
        "python": sys.executable,
        "prefix": sys.prefix,
        "version": ".".join(str(part) for part in sys.version_info[:3]),
        "popularity_contest": None,
        "reporter": None,
        "reporter_error": None,
    }
    try:
        import popularity_contest  # noqa: F401
    except Exception as error:
        found["reporter_error"] = f"cannot import popularity_contest: {error}"
        return found
    try:
        from importlib import metadata

        found["popularity_contest"] = metadata.version("popularity-contest")
    except Exception:
        found["popularity_contest"] = "unknown"
    try:
        from popularity_contest.inprocess import settings
    except Exception as error:
        found["reporter_error"] = f"its popularity-contest has no reporter settings: {error}"
        return found
    cfg = settings.reporter_config()
    found["reporter"] = {
        "host": cfg.host,
        "port": cfg.port,
        "prefix": cfg.prefix,
        "eager": cfg.eager,
        "disabled": cfg.disabled,
        "problem": cfg.problem,
    }
    return found


if __name__ == "__main__":
    print(json.dumps(probe()))
