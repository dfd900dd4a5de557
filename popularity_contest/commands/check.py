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
import json
import os
import socket
import sys
import time
from collections.abc import Mapping
from typing import Any

from popularity_contest import names
from popularity_contest.activation import ActivationFile
from popularity_contest.answers.formats import table
from popularity_contest.commands.check_result import (
    STATSD_EXPORTER_PREFIX,
    CheckResult,
    CollectorCheck,
    Endpoint,
    Evidence,
    Resolution,
    Settings,
    Target,
    TestCounter,
)
from popularity_contest.commands.check_steps import (
    Resolver,
    UnreachableError,
    activation_files,
    collector_url,
    read_collector,
    resolve,
    send_test_counter,
    target_environment,
    test_counter_name,
    unmapped,
    unrecognised_flags,
    unusable_settings,
    wait_for_collector,
    would_report,
)
from popularity_contest.inprocess import lines as wire
from popularity_contest.inprocess import settings as config


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
    if target.probe is not None and target.probe.reporter is not None:
        settings = target.probe.reporter  # as the target's own popularity-contest reads them
    problems = _settings_problems(settings)
    warnings = unrecognised_flags(environ)
    activation = activation_files(target, warnings)
    warnings.extend(_activation_warnings(target, activation))
    _judge_target(target, problems, warnings)

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
    found = _resolve(result, timeout, getaddrinfo)
    if found is None:
        return result
    before = _read_before(result, expect_collector, timeout)
    _send(result, found, before, timeout)
    return result


def _settings_problems(settings: Settings) -> list[str]:
    """The settings' own problem, or reporting disabled: nothing would be sent."""
    if settings.problem:
        return [f"configuration: {settings.problem}"]
    if settings.disabled:
        return [f"reporting is disabled ({config.DISABLE} is set)"]
    return []


def _activation_warnings(target: Target, activation: list[ActivationFile]) -> list[str]:
    """No activation file installed, or one that differs from this version's."""
    warnings = []
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
    return warnings


def _judge_target(target: Target, problems: list[str], warnings: list[str]) -> None:
    """Another environment: can its interpreter run, and has it popularity-contest?"""
    if target.here:
        return
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


def _resolve(result: CheckResult, timeout: float, getaddrinfo: Resolver) -> tuple[Any, ...] | None:
    """``(family, sockaddr)`` of the statsd host, recorded in ``result``; None: a problem."""
    settings = result.config
    started = time.monotonic()
    try:
        found = resolve(settings.host, settings.port, timeout, getaddrinfo)
    except UnreachableError as why:
        result.resolve.error = str(why)
        result.problems.append(f"cannot resolve {settings.host}: {why}")
        return None
    finally:
        result.resolve.seconds = round(time.monotonic() - started, 4)
    result.resolve.address = str(found[1][0])
    return found


def _read_before(
    result: CheckResult, expect_collector: str | None, timeout: float
) -> Evidence | None:
    """``--expect-collector``: the evidence counters before sending (None: nothing to watch)."""
    if expect_collector is None:
        return None
    url = collector_url(expect_collector)
    collector = result.collector = CollectorCheck(url=url)
    try:
        reading = read_collector(expect_collector, timeout)
    except UnreachableError as error:
        collector.error = str(error)
        result.problems.append(str(error))
        return None
    collector.kind = reading.kind
    if reading.kind is Endpoint.OTHER:
        collector.error = "not popularity-contest or statsd_exporter"
        result.problems.append(
            f"{url}/metrics is not popularity-contest's or statsd_exporter's (neither"
            f" {names.COLLECTOR_PREFIX}* nor {STATSD_EXPORTER_PREFIX}* metrics): point"
            " --expect-collector at the collector's HTTP address"
        )
        return None
    return reading.evidence


def _send(
    result: CheckResult, found: tuple[Any, ...], before: Evidence | None, timeout: float
) -> None:
    """Send the test counter; with a collector to watch, see whether it arrived."""
    settings = result.config
    address = f"{settings.host}:{settings.port}"
    family, sockaddr = found
    try:
        send_test_counter(family, sockaddr, result.test_counter.name)
    except UnreachableError as error:
        result.test_counter.error = str(error)
        result.problems.append(f"test counter: {error}")
        if result.collector is not None and result.collector.kind is not Endpoint.OTHER:
            result.problems.append(
                f"nothing listens on UDP {address}: the collector at {result.collector.url}"
                " receives statsd elsewhere (`serve --statsd`), or the reporter's"
                f" {config.HOST}/{config.PORT} point at the wrong place"
            )
        return
    result.test_counter.sent = True
    if before is not None and result.collector is not None:
        _watch(result, result.collector, before, timeout)


def _watch(
    result: CheckResult, collector: CollectorCheck, before: Evidence, timeout: float
) -> None:
    """Wait for the test counter on the collector's ``/metrics`` and judge what moved."""
    settings = result.config
    address = f"{settings.host}:{settings.port}"
    evidence, after = wait_for_collector(collector.url, before, timeout)
    collector.before = before
    collector.after = after
    collector.evidence = evidence
    collector.received = evidence is not None
    moved = unmapped(before, after or {})
    if moved is not None:
        # It arrived, but no rule maps it: real reports with this prefix are dropped too.
        collector.received = True
        collector.evidence = moved
        collector.error = f"no mapping rule matches the prefix {settings.prefix}"
        result.problems.append(
            f"the collector at {collector.url} received the test counter, but no"
            f" mapping rule matches the prefix {settings.prefix}: add a rule for it to the"
            " collector's mapping (`serve --mapping FILE`, or statsd_exporter's"
            " --statsd.mapping-config), or use a prefix it maps"
        )
    elif evidence is None:
        result.problems.append(
            f"something listens on UDP {address}, but the test counter never showed on"
            f" {collector.url}/metrics within {timeout:g} s: that listener is not"
            " this collector"
        )
        result.warnings.append(suspects(settings.port, address))


def suspects(port: int, address: str) -> str:
    """The warning about another program holding the reporter's UDP port."""
    text = f"another program may hold UDP {address} (find it with `ss -ulpn`"
    text += f" or `lsof -i UDP:{port}`)"
    if port == config.DEFAULT_PORT:
        text += f"; netdata and the Datadog agent also listen on UDP {port} by default"
    return text


def _yes(value: object) -> str:
    return "yes" if value else "no"


def render(result: CheckResult) -> str:
    """The table for people: one ``CHECK  RESULT`` row per finding, then warnings, problems."""
    rows = _setting_rows(result) + _reporting_rows(result)
    lines = [table(["CHECK", "RESULT"], rows, set())]
    lines.extend(f"warning: {text}" for text in result.warnings)
    lines.extend(f"problem: {text}" for text in result.problems)
    lines.append("healthy" if result.healthy else "NOT healthy")
    return "\n".join(lines)


def _setting_rows(result: CheckResult) -> list[list[str]]:
    """Rows for the environment, the reporter's settings and the resolved host."""
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
    return rows


def _reporting_rows(result: CheckResult) -> list[list[str]]:
    """Rows for the activation files, what would be reported and what was sent and seen."""
    cfg = result.config
    rows: list[list[str]] = []
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
    return rows


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
