"""Time a reporter's exit hook inside one real process (run by the benchmark's venv).

Usage (the benchmark passes this file's text with ``-c``, so that ``sys.path`` is the same
as in the whole-process runs)::

    python -c "$(cat _exit_probe.py)" ours|upstream WORKLOAD [HANG_SECONDS]

The probe records what the reporter registers with ``atexit`` while it is activated (so it
depends on no private name), imports WORKLOAD, then calls those functions once, timed, and
prints one JSON line. With HANG_SECONDS, name resolution is replaced by a function that
sleeps that long and then fails, as a resolver that never answers does; the host must then
be a name, not an address. Each run is a fresh process: the hook runs cold, as at a real exit.
"""

import atexit
import importlib
import json
import os
import sys
import time
from collections.abc import Callable

flavour, workload = sys.argv[1], sys.argv[2]
hang = float(sys.argv[3]) if len(sys.argv) > 3 else None

if hang is not None:
    import _socket

    def _never_answers(*args: object, **kwargs: object) -> object:
        time.sleep(hang)
        raise _socket.gaierror(-3, "Temporary failure in name resolution")

    _socket.getaddrinfo = _never_answers  # socket.getaddrinfo calls this one too

registered = []
_register = atexit.register


def _capture(func: Callable[..., object], *args: object, **kwargs: object) -> object:
    registered.append((func, args, kwargs))
    return _register(func, *args, **kwargs)


atexit.register = _capture
modules_before = len(sys.modules)
reporter = importlib.import_module("popularity_contest.reporter")
if flavour == "upstream":
    reporter.setup_reporter()
atexit.register = _register

importlib.import_module(workload)
modules = len(sys.modules)


def _run_hooks() -> str | None:
    try:
        for func, args, kwargs in registered:
            func(*args, **kwargs)
    except Exception as exc:  # upstream 0.4.1 raises when the host does not resolve
        return repr(exc)
    return None


start = time.perf_counter_ns()
error = _run_hooks()
elapsed = time.perf_counter_ns() - start

print(
    json.dumps(
        {
            "exit_ns": elapsed,
            "hooks": len(registered),
            "modules": modules,
            "modules_before": modules_before,
            "error": error,
        }
    ),
    flush=True,
)
# The hooks ran; skip the rest of interpreter shutdown (and a still-sleeping resolver).
os._exit(0)
