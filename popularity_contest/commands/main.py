"""The ``popularity-contest`` command: argument parsing only.

Each subcommand names the module and function that does the work (``run(args) -> int``);
that module is imported only when its subcommand runs, so ``popularity-contest --help``
stays fast and the reporter never pulls in the collector.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from popularity_contest import __version__
from popularity_contest.answers.window import DEFAULT_SINCE
from popularity_contest.errors import PopconError

FORMATS = ("table", "json", "csv")


def _add_format(parser: argparse.ArgumentParser, choices: Sequence[str] = FORMATS) -> None:
    parser.add_argument(
        "--format",
        choices=choices,
        default="table",
        help="output for people (table, the default) or for machines",
    )


def _add_environment(parser: argparse.ArgumentParser) -> None:
    """``--python PATH`` or ``--prefix PATH``: the environment a command looks at."""
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--python", metavar="PATH", help="the environment's interpreter (default: this one)"
    )
    target.add_argument(
        "--prefix", metavar="PATH", help="the environment's prefix (default: this sys.prefix)"
    )


def _add_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--db",
        metavar="PATH",
        help="the embedded collector's SQLite store (default: the collector's default path)",
    )
    source.add_argument(
        "--prometheus",
        metavar="URL",
        help="read counts from a Prometheus server's HTTP API instead of the store",
    )


def _add_window(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since",
        default=DEFAULT_SINCE,
        metavar="AGE",
        help=f"window ending now: 90m, 1h30m, 12h, 30d, 8w, 1y (default {DEFAULT_SINCE})",
    )
    parser.add_argument(
        "--start", metavar="TIME", help="window start (ISO 8601); overrides --since"
    )
    parser.add_argument("--end", metavar="TIME", help="window end (ISO 8601, default now)")
    parser.add_argument(
        "--hub",
        metavar="HUB",
        help="only this hub (the Prometheus label `namespace`; '' = processes with no hub)",
    )
    parser.add_argument(
        "--min-processes",
        type=int,
        default=None,
        metavar="K",
        help="privacy threshold: hide packages reported by fewer than K processes",
    )


#: ``check --expect-collector`` without a URL: the embedded collector's default HTTP address.
DEFAULT_COLLECTOR_URL = "http://127.0.0.1:9102"


def _http_url(text: str) -> str:
    """An ``http://`` or ``https://`` URL (anything else is refused before any lookup)."""
    if not text.lower().startswith(("http://", "https://")) or len(text.split("://", 1)[1]) == 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a URL: give http://HOST:PORT or https://HOST:PORT"
        )
    return text


def _positive_seconds(text: str) -> float:
    """A number of seconds greater than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a number of seconds above 0")
    return value


def _add_archive(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``archive`` subcommand's flags."""
    cmd = sub.add_parser(
        "archive",
        help="copy daily counts from Prometheus-compatible APIs into the store (for years)",
        description="Read one count per series and complete UTC day from each source with "
        "the dashboard's counting expression and add them to the store as daily buckets "
        "labelled cluster=NAME. Idempotent and resumable: each source's last archived day "
        "is kept in the store. Run it daily (a Kubernetes CronJob, a systemd timer).",
    )
    cmd.add_argument(
        "--source",
        action="append",
        required=True,
        metavar="NAME=URL",
        help="a source and its base URL (Prometheus, Thanos Query, Mimir, VictoriaMetrics);"
        " repeat for several clusters, e.g. --source east=http://prometheus.east:9090",
    )
    cmd.add_argument(
        "--db", metavar="PATH", help="the store to write (default: the collector's store)"
    )
    cmd.add_argument(
        "--prometheus-header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an HTTP header sent to every source, e.g. 'X-Scope-OrgID: hubs' (repeatable)",
    )
    cmd.add_argument(
        "--bearer-token-file", metavar="FILE", help="send 'Authorization: Bearer <file's text>'"
    )
    cmd.add_argument("--ca-file", metavar="FILE", help="CA bundle to verify HTTPS sources")
    cmd.add_argument(
        "--backfill",
        default="1830d",
        metavar="AGE",
        help="how far back a source's first run starts (default 1830d: any retention)",
    )
    cmd.add_argument(
        "--until", metavar="DAY", help="stop after this UTC day (ISO 8601); default yesterday"
    )
    cmd.add_argument("--format", choices=("table", "json"), default="table")
    cmd.set_defaults(target="popularity_contest.commands.archive:run")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="popularity-contest",
        description="Count which installed Python packages users import, privately.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for verb, doing in (("install", "enable"), ("uninstall", "disable")):
        cmd = sub.add_parser(verb, help=f"{doing} the reporter in a Python environment")
        cmd.add_argument(
            "method",
            choices=("ipython", "site"),
            help="ipython: an IPython startup file; site: a .pth file for every process",
        )
        cmd.add_argument(
            "--prefix",
            metavar="PATH",
            help="the environment's prefix (default: this interpreter's sys.prefix)",
        )
        _add_format(cmd, ("table", "json"))
        cmd.set_defaults(target="popularity_contest.commands.install:run")

    check = sub.add_parser("check", help="show the configuration and send a test counter")
    _add_environment(check)
    check.add_argument(
        "--expect-collector",
        nargs="?",
        const=DEFAULT_COLLECTOR_URL,
        type=_http_url,
        metavar="URL",
        help="verify that the collector at URL (http:// or https://; default"
        f" {DEFAULT_COLLECTOR_URL}) received the test counter",
    )
    check.add_argument(
        "--timeout", type=_positive_seconds, default=2.0, help="seconds to wait (default 2)"
    )
    _add_format(check, ("table", "json"))
    check.set_defaults(target="popularity_contest.commands.check:run")

    serve = sub.add_parser(
        "serve",
        help="run the embedded collector (statsd in, HTTP out)",
        description="The embedded collector: statsd counters in over UDP, a SQLite store,"
        " and over HTTP a page, a JSON/CSV API, /metrics and /healthz.",
    )
    from popularity_contest.collector.settings import add_arguments

    add_arguments(serve)
    serve.set_defaults(target="popularity_contest.commands.serve:run")

    prune = sub.add_parser(
        "prune",
        help="drop junk series from the collector's store (when the series cap is reached)",
        description="Delete series from the embedded collector's store, with their history. "
        "Series matching every condition given are deleted; a running `serve` notices.",
    )
    prune.add_argument(
        "--db",
        metavar="PATH",
        help="the store (default: $PYTHON_POPCONTEST_SERVE_DB, else the collector's default)",
    )
    prune.add_argument(
        "--below",
        type=float,
        metavar="K",
        help="series counted fewer than K times in all (e.g. 2: packages seen once)",
    )
    prune.add_argument(
        "--match",
        metavar="GLOB",
        help="series whose metric name or a label value matches GLOB, a shell-style pattern",
    )
    prune.add_argument("--dry-run", action="store_true", help="list, delete nothing")
    _add_format(prune, ("table", "json"))
    prune.set_defaults(target="popularity_contest.commands.prune:run")

    report = sub.add_parser(
        "report",
        help="top packages over a window",
        description="Processes that imported each package in a window (count) and those "
        "whose own code imported it (direct), with their share of the processes reported.",
    )
    _add_source(report)
    _add_window(report)
    report.add_argument(
        "--by",
        action="append",
        choices=("hub", "distribution"),
        help="hub: one row per hub; distribution: import names grouped by the "
        "distribution providing them in the environment of --python/--prefix (scikit-learn "
        "rather than sklearn); repeat to combine",
    )
    report.add_argument(
        "--rank",
        choices=("processes", "direct"),
        default="processes",
        help="order by processes that imported it (default) or by processes whose own code"
        " imported it",
    )
    _add_environment(report)
    report.add_argument(
        "--limit", type=int, default=None, metavar="N", help="show at most N rows (per hub)"
    )
    _add_format(report)
    report.set_defaults(target="popularity_contest.commands.report:run")

    unused = sub.add_parser("unused", help="installed packages nobody imported in a window")
    _add_environment(unused)
    _add_source(unused)
    _add_window(unused)
    _add_format(unused, ("table", "json", "csv", "requirements"))
    unused.set_defaults(target="popularity_contest.commands.unused:run")

    _add_archive(sub)

    demo = sub.add_parser(
        "demo", help="start a collector, run instrumented Python processes, show the counts"
    )
    demo.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the collector and its page up until Ctrl-C (default: only on a terminal)",
    )
    demo.set_defaults(target="popularity_contest.commands.demo:run")
    return parser


def _load(target: str) -> Callable[[argparse.Namespace], int]:
    module_name, _, function = target.partition(":")
    func: Callable[[argparse.Namespace], int] = getattr(
        importlib.import_module(module_name), function
    )
    return func


#: Top-level modules of the optional dependencies, and the extra that installs each: a
#: subcommand that needs one which is missing says which extra to install, in one line.
OPTIONAL_MODULES = {
    "prometheus_client": "collector",
    "yaml": "collector",
    "plotly": "collector",
    "tornado": "collector",
    "jupyterhub": "hub",
    "pluggy": "tljh",
}


def missing_extra(error: ModuleNotFoundError) -> str | None:
    """The extra whose absence caused ``error`` (``collector``, ``hub``, ``tljh``), or None."""
    top = (error.name or "").partition(".")[0]
    return OPTIONAL_MODULES.get(top)


#: Exit status after the reader of our output went away (``popularity-contest report | head``):
#: what a shell reports for a Unix tool that SIGPIPE ended (128 + 13), so ``set -o pipefail``
#: scripts see the same thing as with ``grep`` or ``sort``; nothing is printed.
BROKEN_PIPE_STATUS = 141


def _quiet_stdout() -> None:
    # Python flushes stdout once more at exit, which would fail again and print "Exception
    # ignored ... BrokenPipeError": point the file descriptor at devnull instead.
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status (0 fine, 1 failed, 2 usage, 130 Ctrl-C, 141 pipe)."""
    try:
        try:
            status = _run(argv)
        finally:
            sys.stdout.flush()  # inside the try: `--help | head` too
    except BrokenPipeError:
        _quiet_stdout()
        return BROKEN_PIPE_STATUS
    return status


def _run(argv: Sequence[str] | None) -> int:
    # The tool's own process is no user's: if a .pth activated the reporter here, stop it.
    reporter = sys.modules.get("popularity_contest.reporter")
    if reporter is not None:
        reporter.stop()
    args = build_parser().parse_args(argv)
    try:
        return _load(args.target)(args)
    except PopconError as error:
        # Expected failures: one line, no traceback (bugs keep theirs).
        print(f"popularity-contest {args.command}: {error}", file=sys.stderr)
        return error.exit_status
    except ModuleNotFoundError as error:
        extra = missing_extra(error)
        if extra is None:
            raise  # not an optional dependency: a bug, keep its traceback
        print(
            f"popularity-contest {args.command}: needs the {extra} extra ({error.name} is not"
            f" installed): pip install 'popularity-contest[{extra}]'",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
