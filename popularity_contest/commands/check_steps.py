"""The steps of ``popularity-contest check``, one function each.

Naming the environment (``target_environment``, running ``check_probe.py`` by path with
``-I``), reading the reporter's settings words (``unrecognised_flags``,
``unusable_settings``), what this process would report (``would_report``), resolving the
statsd host within a timeout (``resolve``), sending the test counter (``send_test_counter``)
and reading a collector's ``/metrics`` for evidence (``read_collector``,
``wait_for_collector``). ``commands.check.gather`` runs them in order and records what they
find in ``commands.check_result`` records.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from popularity_contest import activation as install
from popularity_contest import names
from popularity_contest.commands.check_result import (
    STATSD_EXPORTER_PREFIX,
    Endpoint,
    Evidence,
    Probe,
    Reading,
    Report,
    Settings,
    Target,
)
from popularity_contest.commands.main import DEFAULT_COLLECTOR_URL
from popularity_contest.errors import PopconError
from popularity_contest.inprocess import classify as packages
from popularity_contest.inprocess import lines as wire
from popularity_contest.inprocess import settings as config

#: What shows on the collector's ``/metrics`` when the test counter arrives, best first: the
#: mapped counter itself, else the embedded collector's (or statsd_exporter's) count of
#: statsd lines received.
EVIDENCE = (names.CHECK, names.LINES_RECEIVED, STATSD_EXPORTER_PREFIX + "lines_total")
#: The collector's (or statsd_exporter's) count of lines no mapping rule matched: when it
#: moves and the mapped counter does not, the counter arrived but its prefix is not mapped.
UNMAPPED = (
    names.COLLECTOR_PREFIX + "lines_unmapped_total",
    STATSD_EXPORTER_PREFIX + "events_unmapped_total",
)
#: The reporter's yes/no variables; ``check`` warns about a value they do not recognise.
BOOLEAN_VARIABLES = (
    config.DISABLE,
    config.DEBUG,
    config.EAGER,
    config.COUNT_DISTRIBUTIONS,
    config.COUNT_LOCAL,
    config.COUNT_DIRECT,
)
#: Seconds to wait for an ICMP "port unreachable" after sending.
_REFUSAL_WAIT = 0.25
#: The program ``--python``/``--prefix`` run with the target's interpreter, by path.
PROBE = Path(__file__).with_name("check_probe.py")
PROBE_TIMEOUT = 60.0
Resolver = Callable[..., Any]


class CheckError(PopconError):
    """The target environment cannot be examined (one line for the user)."""


class UnreachableError(PopconError):
    """The statsd host or a collector's ``/metrics`` cannot be reached; the message says why.

    ``check`` records it as a finding (``commands.check``) rather than stopping on it.
    """


def test_counter_name(prefix: str) -> str:
    """``python_popcon.imported_package`` -> ``python_popcon.check``."""
    return wire.sibling(prefix, names.LEAF_CHECK)


def resolve(
    host: str, port: int, timeout: float, getaddrinfo: Resolver = socket.getaddrinfo
) -> tuple[int, tuple[Any, ...]]:
    """``(family, sockaddr)`` of ``host``, within ``timeout`` seconds; else ``UnreachableError``.

    IPv4 first (``localhost`` may resolve to ``::1`` first while the collector listens on
    127.0.0.1), then any family. A blocking ``getaddrinfo`` cannot be interrupted, so it runs
    in a daemon thread that ends with the lookup; we stop waiting for it after ``timeout``.
    """
    found: list[tuple[int, tuple[Any, ...]]] = []
    failed: list[str] = []

    def lookup() -> None:
        error = "no address"
        for family in (socket.AF_INET, socket.AF_UNSPEC):
            try:
                infos = getaddrinfo(host, port, family, socket.SOCK_DGRAM)
            except (OSError, UnicodeError) as exc:
                error = str(exc) or type(exc).__name__
                continue
            for info in infos:
                found.append((info[0], info[4]))
                return
        failed.append(error)

    thread = threading.Thread(target=lookup, name="popcon-check-resolve", daemon=True)
    thread.start()
    thread.join(timeout)
    if found:
        return found[0]
    raise UnreachableError(failed[0] if failed else f"no answer within {timeout:g} s")


def send_test_counter(
    family: int, sockaddr: tuple[Any, ...], name: str, wait: float = _REFUSAL_WAIT
) -> None:
    """Send ``<name>:1|c``; ``UnreachableError`` says why it could not be sent.

    A connected UDP socket receives the host's ICMP "port unreachable" as an error on the
    next call, which tells a dead port apart from a listening one on loopback and LANs.
    """
    payload = wire.counter_line(name).encode("ascii")
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect(sockaddr)
            sock.send(payload)
            sock.settimeout(wait)
            try:
                sock.recv(1)  # a reply is unexpected, but whoever answered is listening
            except TimeoutError:
                pass
    except ConnectionRefusedError:
        raise UnreachableError(
            f"nothing listens on UDP port {sockaddr[1]} of {sockaddr[0]}"
        ) from None
    except OSError as exc:
        raise UnreachableError(f"cannot send: {exc.strerror or exc}") from None


def _get(url: str, timeout: float) -> str:
    request = urllib.request.Request(url, headers={"Accept": "text/plain"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        body: bytes = response.read()
    return body.decode("utf-8", "replace")


def metric_total(text: str, name: str) -> float | None:
    """Sum of the samples of ``name`` (any labels) in Prometheus text format; None if absent."""
    total: float | None = None
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        rest = line[len(name) :]
        if rest[:1] not in ("{", " "):
            continue
        if rest.startswith("{"):
            rest = rest[rest.rfind("}") + 1 :]
        parts = rest.split()
        if not parts:
            continue
        try:
            value = float(parts[0])
        except ValueError:
            continue
        total = value if total is None else total + value
    return total


def collector_url(url: str) -> str:
    url = url.rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url


def read_collector(url: str, timeout: float) -> Reading:
    """What serves ``url``'s ``/metrics`` and its evidence counters; else ``UnreachableError``."""
    metrics = collector_url(url) + "/metrics"
    try:
        text = _get(metrics, timeout)
    except urllib.error.HTTPError as exc:
        raise UnreachableError(
            f"cannot read {metrics}: HTTP {exc.code} {exc.reason} (closed to anonymous"
            " readers when a hub is configured: run the check without --expect-collector)"
        ) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        hint = "is the collector running?"
        if collector_url(url) == DEFAULT_COLLECTOR_URL:
            hint += " If it listens elsewhere, pass your collector's URL: --expect-collector"
            hint += " http://HOST:PORT"
        raise UnreachableError(
            f"cannot read {metrics}: {reason} (nothing answers there: {hint})"
        ) from None
    evidence = {name: metric_total(text, name) for name in (*EVIDENCE, *UNMAPPED)}
    return Reading(Endpoint.of(text), evidence)


def received(before: Mapping[str, float | None], after: Mapping[str, float | None]) -> str | None:
    """The name of the counter that shows the test counter arrived, if one does.

    The mapped test counter is proof; without a mapping rule for it, the collector counts it
    among the lines it received (and as unmapped), which proves the path, if less precisely.
    """
    for name in EVIDENCE:
        if (after.get(name) or 0.0) > (before.get(name) or 0.0):
            return name
        if after.get(name) is not None:
            return None  # this counter exists and did not move: do not fall back further
    return None


def unmapped(before: Mapping[str, float | None], after: Mapping[str, float | None]) -> str | None:
    """The name of the unmapped-lines counter (see ``UNMAPPED``) that moved, if one did."""
    for name in UNMAPPED:
        if (after.get(name) or 0.0) > (before.get(name) or 0.0):
            return name
    return None


def wait_for_collector(
    url: str, before: Mapping[str, float | None], timeout: float
) -> tuple[str | None, Evidence | None]:
    # The collector counts a datagram as soon as its UDP loop reads it; poll until it shows.
    deadline = time.monotonic() + timeout
    after: Evidence | None = None
    delay = 0.01
    while True:
        try:
            reading = read_collector(url, max(0.1, deadline - time.monotonic()))
        except UnreachableError:
            pass  # not (yet) readable: try again until the deadline
        else:
            after = reading.evidence
            evidence = received(before, after)
            if evidence is not None or unmapped(before, after) is not None:
                return evidence, after
        if time.monotonic() >= deadline:
            return None, after
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.2)


def unrecognised_flags(environ: Mapping[str, str]) -> list[str]:
    """Warnings for yes/no variables set to a word the reporter does not recognise.

    The reporter then uses the variable's default, which is rarely what was meant
    (``PYTHON_POPCONTEST_DISABLE=2`` does not disable). The accepted words are the
    reporter's own (``inprocess.settings``).
    """
    accepted_true = sorted(config.TRUE_WORDS)  # the reporter's own word lists
    accepted_false = sorted(word for word in config.FALSE_WORDS if word)
    warnings = []
    for name in BOOLEAN_VARIABLES:
        value = environ.get(name)
        if value is None:
            continue
        # flag() falls back to its default only for words it does not recognise.
        if config.flag(environ, name, True) != config.flag(environ, name, False):
            warnings.append(
                f"{name}={value!r} is not a yes/no word, so it is ignored (the default applies):"
                f" use one of {' '.join(accepted_true)} or {' '.join(accepted_false)}"
                " (any case; empty means no)"
            )
    return warnings


def unusable_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """``{"host"|"port": why}`` for a statsd host or port variable that cannot be used.

    The reporter falls back to the default for display but sends nothing; ``check`` shows
    the problem in that row instead of a default that is not in use.
    """
    found = {}
    for key, name in (("host", config.HOST), ("port", config.PORT)):
        value = environ.get(name)
        if value is None:
            continue
        problem = config.reporter_config({name: value}).problem
        if problem is not None:
            found[key] = f"unusable: {name}={value!r}: {problem.removeprefix(name + ' ')}"
    return found


def would_report(
    cfg: config.ReporterConfig,
    modules: Mapping[str, object] | None = None,
    sites: Mapping[str, str] | None = None,
) -> list[Report]:
    """What the reporter would send for the packages imported in this process so far.

    ``sites`` maps site directories to ``packages.SITE``/``USER`` (default: this
    interpreter's).
    """
    mods = dict(sys.modules if modules is None else modules)
    classifier = packages.Classifier(count_local=cfg.count_local, sites=sites)
    rows: list[Report] = []
    # popularity_contest itself is always imported before activation, so never reported.
    for name in sorted(packages.new_top_level(("popularity_contest",), mods)):
        if not wire.is_safe_component(name):
            continue
        found = classifier.classify(name, mods)
        if found is None:
            continue
        kind, dist = found
        statsd_name = wire.package_name(cfg.prefix, name, user_site=kind == packages.USER)
        rows.append(Report(package=name, kind=kind, distribution=dist.name, name=statsd_name))
    return rows


def probe(python: str | os.PathLike[str], timeout: float = PROBE_TIMEOUT) -> Probe:
    """Run ``check_probe.py`` with ``python`` (``-I``, by path); CheckError if it cannot run."""
    try:
        done = subprocess.run(  # noqa: S603 - the operator's chosen interpreter, our own file
            [str(python), "-I", str(PROBE)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise CheckError(f"cannot run {python}: {error}") from None
    last = (done.stdout.strip().splitlines() or [""])[-1]
    try:
        data = json.loads(last)
        reporter = data["reporter"]
        return Probe(
            python=str(data["python"]),
            prefix=str(data["prefix"]),
            version=str(data["version"]),
            popularity_contest=data["popularity_contest"],
            reporter=None if reporter is None else Settings(**reporter),
            reporter_error=data["reporter_error"],
        )
    except (ValueError, KeyError, TypeError):
        why = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise CheckError(f"{python} did not answer the probe: {why}") from None


def target_environment(python: str | None = None, prefix: str | None = None) -> Target:
    """The environment ``--python`` or ``--prefix`` names (default: this interpreter's).

    Another environment's interpreter is run once with ``check_probe.py``; a prefix without
    a runnable interpreter still gets its activation files listed. InstallError/CheckError
    (one line) when the path is not a Python environment.
    """
    if python is None and prefix is None:
        return Target(python=sys.executable, prefix=sys.prefix, here=True, probe=None)
    answer: Probe | None = None
    if python is not None:
        answer = probe(python)
        prefix = answer.prefix
    env = install.locate(prefix)
    if env.prefix == Path(sys.prefix) and python is None:
        return Target(python=sys.executable, prefix=sys.prefix, here=True, probe=None)
    if python is None:
        answer = probe(env.python) if env.python is not None else None
    return Target(
        python=str(python or env.python or ""), prefix=str(env.prefix), here=False, probe=answer
    )


def activation_files(target: Target, warnings: list[str]) -> list[install.ActivationFile]:
    try:
        return install.installed(None if target.here else install.locate(target.prefix))
    except install.InstallError as exc:
        warnings.append(str(exc))
        return []
