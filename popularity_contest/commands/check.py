"""``popularity-contest check``: prove that reporting works from this environment.

It shows the effective configuration, resolves the statsd host with a timeout (in a
short-lived daemon thread, so a resolver that never answers cannot hang an image build),
lists the activation files installed in this environment and what this process would report,
then sends one test counter. The counter's name is the prefix's sibling ``check``
(``python_popcon.check``, ``python_popcon.hub.<ns>.check``): no package rule can match it,
so it never shows up as a package. With ``--expect-collector`` it also reads the embedded
collector's ``/metrics`` before and after sending, and passes only if the collector saw it;
its metric names tell popularity-contest, statsd_exporter and anything else apart.

``--prefix``/``--python`` name another environment (default: this interpreter's): its
activation files are listed and its interpreter runs ``check_probe.py`` (by path, ``-I``)
to read the reporter's settings as that environment's popularity-contest does.

Exit status: 0 when healthy, 1 otherwise. UDP has no acknowledgement: without
``--expect-collector`` a sent counter counts as delivered unless the host answered that
nothing listens on the port (ICMP port unreachable, which a loopback or LAN host does send).
"""

from __future__ import annotations

import argparse
import enum
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from popularity_contest import activation as install
from popularity_contest import names
from popularity_contest.answers.formats import table
from popularity_contest.commands.main import DEFAULT_COLLECTOR_URL
from popularity_contest.errors import PopconError
from popularity_contest.inprocess import classify as packages
from popularity_contest.inprocess import lines as wire
from popularity_contest.inprocess import settings as config

#: statsd_exporter's own metrics start with this; ours with ``names.COLLECTOR_PREFIX``.
STATSD_EXPORTER_PREFIX = "statsd_exporter_"
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
)
#: Seconds to wait for an ICMP "port unreachable" after sending.
_REFUSAL_WAIT = 0.25
#: The program ``--python``/``--prefix`` run with the target's interpreter, by path.
PROBE = Path(__file__).with_name("check_probe.py")
PROBE_TIMEOUT = 60.0

Resolver = Callable[..., Any]
#: Evidence counters (see ``EVIDENCE``) read from ``/metrics``; None when absent.
Evidence = dict[str, float | None]


class CheckError(PopconError):
    """The target environment cannot be examined (one line for the user)."""


class Endpoint(enum.Enum):
    """What answers on ``--expect-collector``'s URL, judged by its ``/metrics``."""

    POPULARITY_CONTEST = "popularity-contest"  # popcon_collector_* metrics
    STATSD_EXPORTER = "statsd_exporter"  # statsd_exporter_* metrics
    OTHER = "other"  # an HTTP server, but neither of ours

    @classmethod
    def of(cls, metrics_text: str) -> Endpoint:
        for line in metrics_text.splitlines():
            name = line.split("# TYPE ", 1)[-1]
            if name.startswith(names.COLLECTOR_PREFIX):
                return cls.POPULARITY_CONTEST
            if name.startswith(STATSD_EXPORTER_PREFIX):
                return cls.STATSD_EXPORTER
        return cls.OTHER


@dataclass
class Settings:
    """The reporter's settings as the target environment reads them."""

    host: str
    port: int
    prefix: str
    eager: bool
    disabled: bool
    problem: str | None

    @classmethod
    def of(cls, cfg: config.ReporterConfig) -> Settings:
        return cls(cfg.host, cfg.port, cfg.prefix, cfg.eager, cfg.disabled, cfg.problem)


@dataclass
class Probe:
    """What ``check_probe.py`` answered from another environment's interpreter."""

    python: str
    prefix: str
    version: str  # the interpreter's, major.minor.micro
    popularity_contest: str | None  # the installed version; None: not importable there
    reporter: Settings | None  # None: that version has no reporter settings to read
    reporter_error: str | None


@dataclass
class Target:
    """The environment checked: this interpreter's (``here``) or one named by a flag."""

    python: str
    prefix: str
    here: bool
    probe: Probe | None  # None when ``here`` or when the prefix has no runnable Python


@dataclass
class ActivationFile:
    method: str  # ipython or site
    path: str | None  # None: the environment has no place for it (no site-packages)
    installed: bool
    current: bool  # its text is what this version writes


@dataclass
class Report:
    """One line the reporter would send: ``name`` is the statsd name."""

    package: str
    kind: str  # site or user
    distribution: str
    name: str


@dataclass
class Resolution:
    address: str | None = None
    error: str | None = None
    seconds: float | None = None


@dataclass
class TestCounter:
    __test__ = False  # not a pytest class

    name: str
    sent: bool = False
    error: str | None = None


@dataclass
class CollectorCheck:
    """``--expect-collector``: what answered at ``url`` and whether it counted the test."""

    url: str
    kind: Endpoint | None = None  # None: nothing answered
    received: bool = False
    error: str | None = None
    evidence: str | None = None  # the counter that moved (see EVIDENCE)
    before: Evidence | None = None
    after: Evidence | None = None


@dataclass
class CheckResult:
    """Everything ``check`` found; ``as_dict()`` is what ``--format json`` prints."""

    config: Settings
    environment: Target
    activation: list[ActivationFile]
    active_in_this_process: bool | None  # None for another environment
    would_report: list[Report] | None  # None for another environment
    processes_counter: str
    test_counter: TestCounter
    resolve: Resolution
    collector: CollectorCheck | None = None
    #: ``{"host"|"port": why}``: a variable set to something unusable (see unusable_settings).
    unusable: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape (keys as in earlier versions, plus ``environment``)."""
        activation: dict[str, Any] = {
            entry.method: {
                "path": entry.path,
                "installed": entry.installed,
                "current": entry.current,
            }
            for entry in self.activation
        }
        activation["active_in_this_process"] = self.active_in_this_process
        collector = None
        if self.collector is not None:
            collector = asdict(self.collector)
            collector["kind"] = None if self.collector.kind is None else self.collector.kind.value
        environment = asdict(self.environment)
        return {
            "config": asdict(self.config),
            "python": self.environment.python,
            "prefix": self.environment.prefix,
            "environment": environment,
            "activation": activation,
            "would_report": (
                None if self.would_report is None else [asdict(r) for r in self.would_report]
            ),
            "processes_counter": self.processes_counter,
            "test_counter": asdict(self.test_counter),
            "resolve": asdict(self.resolve),
            "collector": collector,
            "unusable": dict(self.unusable),
            "healthy": self.healthy,
            "problems": list(self.problems),
            "warnings": list(self.warnings),
        }


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


@dataclass
class Reading:
    kind: Endpoint
    evidence: Evidence


def read_collector(url: str, timeout: float) -> tuple[Reading | None, str | None]:
    """What serves ``url``'s ``/metrics`` and its evidence counters, or why it is unreadable."""
    metrics = _collector_url(url) + "/metrics"
    try:
        text = _get(metrics, timeout)
    except urllib.error.HTTPError as exc:
        return None, (
            f"cannot read {metrics}: HTTP {exc.code} {exc.reason} (closed to anonymous"
            " readers when a hub is configured: run the check without --expect-collector)"
        )
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        hint = "is the collector running?"
        if _collector_url(url) == DEFAULT_COLLECTOR_URL:
            hint += " If it listens elsewhere, pass your collector's URL: --expect-collector"
            hint += " http://HOST:PORT"
        return None, f"cannot read {metrics}: {reason} (nothing answers there: {hint})"
    evidence = {name: metric_total(text, name) for name in (*EVIDENCE, *UNMAPPED)}
    return Reading(Endpoint.of(text), evidence), None


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


def _activation(target: Target, warnings: list[str]) -> list[ActivationFile]:
    try:
        found = install.installed(None if target.here else install.locate(target.prefix))
    except install.InstallError as exc:
        warnings.append(str(exc))
        return []
    return [
        ActivationFile(
            method=method,
            path=None if entry["path"] is None else str(entry["path"]),
            installed=bool(entry["installed"]),
            current=bool(entry["current"]),
        )
        for method, entry in found.items()
    ]


def gather(
    expect_collector: str | None,
    timeout: float,
    environ: Mapping[str, str] | None = None,
    getaddrinfo: Resolver = socket.getaddrinfo,
    target: Target | None = None,
) -> CheckResult:
    """Run every check against ``target`` (default: this interpreter's environment)."""
    target = target or target_environment()
    environ = os.environ if environ is None else environ
    cfg = config.reporter_config(environ)
    settings = Settings.of(cfg)
    problems: list[str] = []
    warnings: list[str] = []
    if target.probe is not None and target.probe.reporter is not None:
        settings = target.probe.reporter  # as the target's own popularity-contest reads them
    if settings.problem:
        problems.append(f"configuration: {settings.problem}")
    elif settings.disabled:
        problems.append(f"reporting is disabled ({config.DISABLE} is set)")

    warnings.extend(unrecognised_flags(environ))
    activation = _activation(target, warnings)
    if not any(entry.installed for entry in activation):
        where = "" if target.here else f" --prefix {target.prefix}"
        warnings.append(
            f"no activation file in this environment: run `popularity-contest install{where}"
            f" ipython` or `popularity-contest install{where} site`"
            " (or import popularity_contest.reporter)"
        )
    warnings.extend(
        f"the {entry.method} file differs from this version's: reinstall it"
        for entry in activation
        if entry.installed and not entry.current
    )
    if not target.here:
        if target.probe is None:
            problems.append(f"{target.prefix} has no Python interpreter that runs")
        elif target.probe.popularity_contest is None:
            problems.append(
                f"popularity-contest is not installed for {target.probe.python}: its activation"
                " files do nothing there (pip install it into that environment)"
            )
        elif target.probe.reporter is None:
            warnings.append(
                f"{target.probe.python} has popularity-contest {target.probe.popularity_contest},"
                f" which this check cannot read: {target.probe.reporter_error}"
            )

    result = CheckResult(
        config=settings,
        environment=target,
        activation=activation,
        active_in_this_process=(
            "popularity_contest.reporter" in sys.modules if target.here else None
        ),
        would_report=would_report(cfg) if target.here else None,
        processes_counter=wire.sibling(settings.prefix, names.LEAF_PROCESSES_REPORTED),
        test_counter=TestCounter(name=test_counter_name(settings.prefix)),
        resolve=Resolution(),
        unusable=unusable_settings(environ) if settings.problem else {},
        problems=problems,
        warnings=warnings,
    )
    if problems:  # disabled, misconfigured or not installed: do not send anything
        return result

    started = time.monotonic()
    found, why = resolve(settings.host, settings.port, timeout, getaddrinfo)
    result.resolve.seconds = round(time.monotonic() - started, 4)
    if found is None:
        result.resolve.error = why
        problems.append(f"cannot resolve {settings.host}: {why}")
        return result
    family, sockaddr = found
    result.resolve.address = str(sockaddr[0])
    address = f"{settings.host}:{settings.port}"

    before: Evidence | None = None
    if expect_collector is not None:
        url = _collector_url(expect_collector)
        result.collector = CollectorCheck(url=url)
        reading, error = read_collector(expect_collector, timeout)
        if reading is None:
            result.collector.error = error
            problems.append(str(error))
        else:
            result.collector.kind = reading.kind
            if reading.kind is Endpoint.OTHER:
                result.collector.error = "not popularity-contest or statsd_exporter"
                problems.append(
                    f"{url}/metrics is not popularity-contest's or statsd_exporter's (neither"
                    f" {names.COLLECTOR_PREFIX}* nor {STATSD_EXPORTER_PREFIX}* metrics): point"
                    " --expect-collector at the collector's HTTP address"
                )
            else:
                before = reading.evidence

    error = send_test_counter(family, sockaddr, result.test_counter.name)
    result.test_counter.sent = error is None
    result.test_counter.error = error
    if error is not None:
        problems.append(f"test counter: {error}")
        if result.collector is not None and result.collector.kind is not Endpoint.OTHER:
            problems.append(
                f"nothing listens on UDP {address}: the collector at {result.collector.url}"
                " receives statsd elsewhere (`serve --statsd`), or the reporter's"
                f" {config.HOST}/{config.PORT} point at the wrong place"
            )
    elif before is not None and result.collector is not None:
        evidence, after = _wait_for_collector(result.collector.url, before, timeout)
        result.collector.before = before
        result.collector.after = after
        result.collector.evidence = evidence
        result.collector.received = evidence is not None
        moved = unmapped(before, after or {})
        if moved is not None:
            # It arrived, but no rule maps it: real reports with this prefix are dropped too.
            result.collector.received = True
            result.collector.evidence = moved
            result.collector.error = f"no mapping rule matches the prefix {settings.prefix}"
            problems.append(
                f"the collector at {result.collector.url} received the test counter, but no"
                f" mapping rule matches the prefix {settings.prefix}: add a rule for it to the"
                " collector's mapping (`serve --mapping FILE`, or statsd_exporter's"
                " --statsd.mapping-config), or use a prefix it maps"
            )
        elif evidence is None:
            problems.append(
                f"something listens on UDP {address}, but the test counter never showed on"
                f" {result.collector.url}/metrics within {timeout:g} s: that listener is not"
                " this collector"
            )
            warnings.append(suspects(settings.port, address))
    return result


def suspects(port: int, address: str) -> str:
    """The warning about another program holding the reporter's UDP port."""
    text = f"another program may hold UDP {address} (find it with `ss -ulpn`"
    text += f" or `lsof -i UDP:{port}`)"
    if port == config.DEFAULT_PORT:
        text += f"; netdata and the Datadog agent also listen on UDP {port} by default"
    return text


def _wait_for_collector(
    url: str, before: Mapping[str, float | None], timeout: float
) -> tuple[str | None, Evidence | None]:
    # The collector counts a datagram as soon as its UDP loop reads it; poll until it shows.
    deadline = time.monotonic() + timeout
    after: Evidence | None = None
    delay = 0.01
    while True:
        reading, _error = read_collector(url, max(0.1, deadline - time.monotonic()))
        if reading is not None:
            after = reading.evidence
            evidence = received(before, after)
            if evidence is not None or unmapped(before, after) is not None:
                return evidence, after
        if time.monotonic() >= deadline:
            return None, after
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.2)


def _yes(value: object) -> str:
    return "yes" if value else "no"


def render(result: CheckResult) -> str:
    """The table for people: one ``CHECK  RESULT`` row per finding, then warnings, problems."""
    cfg, env = result.config, result.environment
    rows: list[list[str]] = [
        ["environment", "this interpreter" if env.here else env.prefix],
        ["python", f"{env.python} (prefix {env.prefix})"],
    ]
    if env.probe is not None:
        installed = env.probe.popularity_contest or "not installed"
        rows.append(["popularity-contest", f"{installed} (Python {env.probe.version})"])
    rows += [
        ["host", result.unusable.get("host", cfg.host)],
        ["port", result.unusable.get("port", str(cfg.port))],
        ["prefix", cfg.prefix],
        ["config", f"problem: {cfg.problem}" if cfg.problem else "ok"],
        ["disabled", _yes(cfg.disabled)],
        ["eager", _yes(cfg.eager)],
    ]
    if result.resolve.address:
        rows.append(
            [
                "resolved",
                f"{result.resolve.address} in {(result.resolve.seconds or 0) * 1000:.1f} ms",
            ]
        )
    elif result.resolve.error:
        rows.append(["resolved", f"FAILED: {result.resolve.error}"])
    for entry in result.activation:
        state = "installed" if entry.installed else "not installed"
        if entry.installed and not entry.current:
            state = "installed (outdated)"
        rows.append([entry.method, f"{state}  {entry.path or ''}".rstrip()])
    if result.active_in_this_process is not None:
        rows.append([".pth ran here", _yes(result.active_in_this_process)])
    if result.would_report is not None:
        reported = [row.name for row in result.would_report]
        rows.append(
            ["would report", ", ".join(reported) if reported else "(no package imported yet)"]
        )
    else:
        rows.append(["would report", f"{cfg.prefix}.<package> for each package a process imports"])
    rows.append(["processes", result.processes_counter])
    counter = result.test_counter
    if counter.sent:
        rows.append(["test counter", f"sent {counter.name}:1|c"])
    elif counter.error:
        rows.append(["test counter", f"FAILED: {counter.error}"])
    else:
        rows.append(["test counter", "not sent"])
    collector = result.collector
    if collector is not None:
        if collector.received and collector.evidence and collector.before and collector.after:
            name = collector.evidence
            was, now = collector.before.get(name) or 0, collector.after.get(name) or 0
            state = f"received ({name} {was:g} -> {now:g})"
            if collector.error:
                state += f", but {collector.error}"
        else:
            state = f"NOT received: {collector.error or 'no change'}"
        kind = f" ({collector.kind.value})" if collector.kind is not None else ""
        rows.append(["collector", f"{collector.url}{kind}: {state}"])
    lines = [table(["CHECK", "RESULT"], rows, set())]
    lines.extend(f"warning: {text}" for text in result.warnings)
    lines.extend(f"problem: {text}" for text in result.problems)
    lines.append("healthy" if result.healthy else "NOT healthy")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``popularity-contest check``."""
    timeout = args.timeout
    target = target_environment(args.python, args.prefix)
    result = gather(args.expect_collector, timeout, target=target)
    if args.format == "json":
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(render(result))
    return 0 if result.healthy else 1
