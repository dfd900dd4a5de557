"""``popularity-contest check``: prove that reporting works from this environment.

It shows the effective configuration, resolves the statsd host with a timeout (in a
short-lived daemon thread, so a resolver that never answers cannot hang an image build),
lists the activation files installed in this environment and what this process would report,
then sends one test counter. The counter's name is the prefix's sibling ``check``
(``python_popcon.check``, ``python_popcon.hub.<ns>.check``): no package rule can match it,
so it never shows up as a package. With ``--expect-collector`` it also reads the embedded
collector's ``/metrics`` before and after sending, and passes only if the collector saw it.

Exit status: 0 when healthy, 1 otherwise. UDP has no acknowledgement: without
``--expect-collector`` a sent counter counts as delivered unless the host answered that
nothing listens on the port (ICMP port unreachable, which a loopback or LAN host does send).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from popularity_contest import activation as install
from popularity_contest import names
from popularity_contest.answers.formats import columns
from popularity_contest.inprocess import classify as packages
from popularity_contest.inprocess import lines as wire
from popularity_contest.inprocess import settings as config

#: What shows on the collector's ``/metrics`` when the test counter arrives, best first: the
#: mapped counter itself, else the embedded collector's count of statsd lines received.
EVIDENCE = (names.CHECK, names.LINES_RECEIVED)
#: Seconds to wait for an ICMP "port unreachable" after sending.
_REFUSAL_WAIT = 0.25

Resolver = Callable[..., Any]


def test_counter_name(prefix: str) -> str:
    """``python_popcon.imported_package`` -> ``python_popcon.check``."""
    return wire.sibling(prefix, names.LEAF_CHECK)


def resolve(
    host: str, port: int, timeout: float, getaddrinfo: Resolver = socket.getaddrinfo
) -> tuple[tuple[Any, ...] | None, str | None]:
    """``((family, sockaddr), None)`` or ``(None, why)``; returns within ``timeout`` seconds.

    IPv4 first (``localhost`` may resolve to ``::1`` first while the collector listens on
    127.0.0.1), then any family. A blocking ``getaddrinfo`` cannot be interrupted, so it runs
    in a daemon thread that ends with the lookup; we stop waiting for it after ``timeout``.
    """
    box: list[tuple[Any, ...] | str] = []

    def lookup() -> None:
        error = "no address"
        for family in (socket.AF_INET, socket.AF_UNSPEC):
            try:
                infos = getaddrinfo(host, port, family, socket.SOCK_DGRAM)
            except (OSError, UnicodeError) as exc:
                error = str(exc) or type(exc).__name__
                continue
            for info in infos:
                box.append((info[0], info[4]))
                return
        box.append(error)

    thread = threading.Thread(target=lookup, name="popcon-check-resolve", daemon=True)
    thread.start()
    thread.join(timeout)
    if not box:
        return None, f"no answer within {timeout:g} s"
    found = box[0]
    if isinstance(found, str):
        return None, found
    return found, None


def send_test_counter(
    family: int, sockaddr: tuple[Any, ...], name: str, wait: float = _REFUSAL_WAIT
) -> str | None:
    """Send ``<name>:1|c``; None when sent, else why not.

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
                sock.recv(1)
            except TimeoutError:
                return None
            return None  # a reply: unexpected, but whoever answered is listening
    except ConnectionRefusedError:
        return f"nothing listens on UDP port {sockaddr[1]} of {sockaddr[0]}"
    except OSError as exc:
        return f"cannot send: {exc.strerror or exc}"


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


def _collector_url(url: str) -> str:
    url = url.rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url


def read_collector(url: str, timeout: float) -> tuple[dict[str, float | None] | None, str | None]:
    """The collector's evidence counters (see ``EVIDENCE``), or why ``/metrics`` is unreadable."""
    try:
        text = _get(_collector_url(url) + "/metrics", timeout)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return None, f"cannot read {_collector_url(url)}/metrics: {reason}"
    return {name: metric_total(text, name) for name in EVIDENCE}, None


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


def would_report(
    cfg: config.ReporterConfig,
    modules: Mapping[str, object] | None = None,
    sites: Mapping[str, str] | None = None,
) -> list[dict[str, str]]:
    """What the reporter would send for the packages imported in this process so far.

    ``sites`` maps site directories to ``packages.SITE``/``USER`` (default: this
    interpreter's).
    """
    mods = dict(sys.modules if modules is None else modules)
    classifier = packages.Classifier(count_local=cfg.count_local, sites=sites)
    rows: list[dict[str, str]] = []
    # popularity_contest itself is always imported before activation, so never reported.
    for name in sorted(packages.new_top_level(("popularity_contest",), mods)):
        if not wire.is_safe_component(name):
            continue
        found = classifier.classify(name, mods)
        if found is None:
            continue
        kind, dist = found
        statsd_name = wire.package_name(cfg.prefix, name, user_site=kind == packages.USER)
        rows.append({"package": name, "kind": kind, "distribution": dist.name, "name": statsd_name})
    return rows


def gather(
    expect_collector: str | None,
    timeout: float,
    environ: Mapping[str, str] | None = None,
    getaddrinfo: Resolver = socket.getaddrinfo,
) -> dict[str, Any]:
    """Run every check; the result is what ``--format json`` prints."""
    cfg = config.reporter_config(environ)
    problems: list[str] = []
    warnings: list[str] = []
    result: dict[str, Any] = {
        "config": {
            "host": cfg.host,
            "port": cfg.port,
            "prefix": cfg.prefix,
            "eager": cfg.eager,
            "disabled": cfg.disabled,
            "problem": cfg.problem,
        },
        "python": sys.executable,
        "prefix": sys.prefix,
    }
    if cfg.problem:
        problems.append(f"configuration: {cfg.problem}")
    elif cfg.disabled:
        problems.append(f"reporting is disabled ({config.DISABLE} is set)")

    # Activation: the files in this environment, and whether the .pth ran in this process
    # (the CLI stops the reporter it started, but the module stays imported).
    try:
        activation: dict[str, Any] = install.installed()
    except install.InstallError as exc:
        activation = {}
        warnings.append(str(exc))
    activation["active_in_this_process"] = "popularity_contest.reporter" in sys.modules
    result["activation"] = activation
    if not any(v.get("installed") for v in activation.values() if isinstance(v, dict)):
        warnings.append(
            "no activation file in this environment: run `popularity-contest install ipython`"
            " or `popularity-contest install site` (or import popularity_contest.reporter)"
        )
    for method in install.METHODS:
        entry = activation.get(method) or {}
        if entry.get("installed") and not entry.get("current"):
            warnings.append(f"the {method} file differs from this version's: reinstall it")

    result["would_report"] = would_report(cfg)
    result["processes_counter"] = wire.sibling(cfg.prefix, names.LEAF_PROCESSES_REPORTED)

    name = test_counter_name(cfg.prefix)
    result["test_counter"] = {"name": name, "sent": False, "error": None}
    result["resolve"] = {"address": None, "error": None, "seconds": None}
    result["collector"] = None
    if problems:  # disabled or misconfigured: do not send anything
        result["healthy"] = False
        result["problems"] = problems
        result["warnings"] = warnings
        return result

    started = time.monotonic()
    found, why = resolve(cfg.host, cfg.port, timeout, getaddrinfo)
    result["resolve"]["seconds"] = round(time.monotonic() - started, 4)
    if found is None:
        result["resolve"]["error"] = why
        problems.append(f"cannot resolve {cfg.host}: {why}")
    else:
        family, sockaddr = found
        result["resolve"]["address"] = sockaddr[0]

        before: dict[str, float | None] | None = None
        if expect_collector is not None:
            before, error = read_collector(expect_collector, timeout)
            result["collector"] = {"url": _collector_url(expect_collector), "received": False}
            if error is not None:
                result["collector"]["error"] = error
                problems.append(error)

        error = send_test_counter(family, sockaddr, name)
        result["test_counter"]["sent"] = error is None
        result["test_counter"]["error"] = error
        if error is not None:
            problems.append(f"test counter: {error}")
        elif before is not None and expect_collector is not None:
            evidence, after = _wait_for_collector(expect_collector, before, timeout)
            result["collector"].update(
                {"before": before, "after": after, "received": evidence is not None}
            )
            result["collector"]["evidence"] = evidence
            if evidence is None:
                problems.append(
                    f"the collector at {_collector_url(expect_collector)} did not receive the"
                    f" test counter within {timeout:g} s (does it listen on"
                    f" {cfg.host}:{cfg.port}?)"
                )

    result["healthy"] = not problems
    result["problems"] = problems
    result["warnings"] = warnings
    return result


def _wait_for_collector(
    url: str, before: Mapping[str, float | None], timeout: float
) -> tuple[str | None, dict[str, float | None] | None]:
    # The collector counts a datagram as soon as its UDP loop reads it; poll until it shows.
    deadline = time.monotonic() + timeout
    after: dict[str, float | None] | None = None
    delay = 0.01
    while True:
        now, _error = read_collector(url, max(0.1, deadline - time.monotonic()))
        if now is not None:
            after = now
            evidence = received(before, now)
            if evidence is not None:
                return evidence, after
        if time.monotonic() >= deadline:
            return None, after
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.2)


def _yes(value: object) -> str:
    return "yes" if value else "no"


def render(result: Mapping[str, Any]) -> str:
    cfg = result["config"]
    rows: list[list[str]] = [
        ["host", str(cfg["host"])],
        ["port", str(cfg["port"])],
        ["prefix", str(cfg["prefix"])],
        ["config", f"problem: {cfg['problem']}" if cfg["problem"] else "ok"],
        ["disabled", _yes(cfg["disabled"])],
        ["eager", _yes(cfg["eager"])],
        ["python", f"{result['python']} (prefix {result['prefix']})"],
    ]
    resolved = result["resolve"]
    if resolved["address"]:
        rows.append(["resolved", f"{resolved['address']} in {resolved['seconds'] * 1000:.1f} ms"])
    elif resolved["error"]:
        rows.append(["resolved", f"FAILED: {resolved['error']}"])
    activation = result["activation"]
    for method in install.METHODS:
        entry = activation.get(method) or {}
        state = "installed" if entry.get("installed") else "not installed"
        if entry.get("installed") and not entry.get("current"):
            state = "installed (outdated)"
        rows.append([method, f"{state}  {entry.get('path') or ''}".rstrip()])
    rows.append([".pth ran here", _yes(activation.get("active_in_this_process"))])
    names = [row["name"] for row in result["would_report"]]
    rows.append(["would report", ", ".join(names) if names else "(no package imported yet)"])
    rows.append(["processes", str(result["processes_counter"])])
    counter = result["test_counter"]
    if counter["sent"]:
        rows.append(["test counter", f"sent {counter['name']}:1|c"])
    elif counter["error"]:
        rows.append(["test counter", f"FAILED: {counter['error']}"])
    else:
        rows.append(["test counter", "not sent"])
    collector = result.get("collector")
    if collector:
        if collector.get("received"):
            name = collector["evidence"]
            was, now = collector["before"].get(name) or 0, collector["after"].get(name) or 0
            state = f"received ({name} {was:g} -> {now:g})"
        else:
            state = f"NOT received: {collector.get('error') or 'no change'}"
        rows.append(["collector", f"{collector['url']}: {state}"])
    lines = [columns(rows)]
    lines.extend(f"warning: {text}" for text in result["warnings"])
    lines.extend(f"problem: {text}" for text in result["problems"])
    lines.append("healthy" if result["healthy"] else "NOT healthy")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``popularity-contest check``."""
    timeout = args.timeout if args.timeout > 0 else 2.0
    result = gather(args.expect_collector, timeout)
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        print(render(result))
    return 0 if result["healthy"] else 1
