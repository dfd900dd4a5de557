"""Turn the recorder's per-process logs into the counts the collector should hold.

The recorder (``truth/_popcon_acceptance_truth.py``) logs, per process, the top-level names
that appear in ``sys.modules`` and the moments that matter. This module applies the
documented rules, independently of popularity-contest's code:

- *Snapshot*: what a process imported before its user code started is never counted. For
  an IPython shell or kernel (its startup files ran) user code starts at the first cell, so
  whatever the shell or kernel imported to start itself is snapshot, whichever way the
  reporter was activated. For any other process it starts when the interpreter runs the
  script, ``-c`` string or ``-m`` module: what exists at the end of ``site`` start-up
  (every ``.pth`` included) is snapshot.
- *Which processes report*: with ``install ipython``, IPython shells and kernels; with
  ``install site``, every process that ran ``site`` except isolated ones (``-I``) and
  popularity-contest's own commands; with both, either.
- *Counted names*: top-level names that do not start with ``_`` and that an installed,
  non-local distribution provides (``Distributions``, read by the environment's own
  interpreter through ``importlib.metadata``).
- *Forks*: a forked child counts what it imports after the fork (once its parent's user
  code had started), and is not a new process. A process that ``exec``s another program
  (``jupyter`` -> ``jupyter-nbconvert``) is one process whose imports are the union.
- *Processes counter*: every reporting process (forks excluded) that imported a counted
  package or exited normally.
"""

from __future__ import annotations

import ast
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

#: Run by the environment's interpreter: each distribution's top-level names (its
#: ``top_level.txt`` plus the first component of every importable path in its file list)
#: and whether it was installed from a local path, archive or VCS (PEP 610).
PROBE = r"""
import importlib.machinery, importlib.metadata as md, json, sys
suffixes = tuple(importlib.machinery.all_suffixes())
out = {}
for dist in md.distributions():
    name = dist.metadata["Name"]
    tops = set((dist.read_text("top_level.txt") or "").split())
    for path in dist.files or ():
        parts = path.parts
        if not parts or parts[0] in ("..", "__pycache__"):
            continue
        if parts[0].endswith((".dist-info", ".egg-info", ".data")):
            continue
        if len(parts) > 1:
            tops.add(parts[0])
        elif parts[0].endswith(suffixes):
            tops.add(parts[0].split(".")[0])
    local = False
    direct = dist.read_text("direct_url.json")
    if direct:
        info = json.loads(direct)
        local = "dir_info" in info or "vcs_info" in info or info.get("url", "").startswith("file:")
    tops = sorted(t for t in tops if t.isidentifier())
    out[name] = {"version": dist.version, "tops": tops, "local": local}
json.dump(out, sys.stdout)
"""


@dataclass
class Distributions:
    """What ``PROBE`` printed: ``{name: {"version", "tops", "local"}}``."""

    info: dict[str, dict[str, object]]

    def countable(self) -> dict[str, set[str]]:
        """Top-level name -> the non-local distributions providing it."""
        names: dict[str, set[str]] = {}
        for dist, data in self.info.items():
            if data["local"]:
                continue
            for top in data["tops"]:  # type: ignore[attr-defined]
                names.setdefault(top, set()).add(dist)
        return names


@dataclass
class Record:
    """One process image's log (a forked child has its own)."""

    ident: str
    pid: int
    ppid: int
    start: float
    isolated: bool
    argv: list[str]
    #: (name, markers seen before it) for every top-level name, in order.
    names: list[tuple[str, frozenset[str]]] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)
    fork_parent: str | None = None
    inherited: frozenset[str] = frozenset()

    @property
    def ipython(self) -> bool:
        return "ipython" in self.markers or "ipython" in self.inherited

    def user_names(self) -> set[str]:
        """Names imported after user code started (see the module docstring)."""
        boundary = "cell" if self.ipython else "run"
        return {name for name, seen in self.names if boundary in seen}

    def snapshot_names(self) -> set[str]:
        """Names imported before user code started (a forked child has none)."""
        return {name for name, _ in self.names} - self.user_names()


def parse(path: Path) -> Record:
    record: Record | None = None
    seen: set[str] = set()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        kind, _, rest = line.partition("\t")
        fields = rest.split("\t") if rest else []
        if kind == "start":
            record = Record(
                ident=path.stem,
                pid=int(fields[1]),
                ppid=int(fields[2]),
                start=float(fields[0]),
                isolated=fields[3] == "1",
                argv=list(ast.literal_eval(fields[4])),
            )
            continue
        if kind == "fork":
            record = Record(ident=path.stem, pid=int(path.stem.split("-")[0]), ppid=0,
                            start=0.0, isolated=False, argv=[], fork_parent=fields[0])  # fmt: skip
            record.inherited = frozenset(fields[1].split(",")) - {"-"}
            seen |= record.inherited
            continue
        if record is None:
            raise AssertionError(f"{path}: no start line")
        if kind == "mods":
            record.names += [(name, frozenset(seen)) for name in fields[0].split()]
        else:
            record.markers.append(kind)
            seen.add(kind)
    if record is None:
        raise AssertionError(f"{path}: empty")
    return record


@dataclass
class Process:
    """One process as the collector should count it (exec'd images merged)."""

    images: list[Record]
    covered: bool = False
    fork: bool = False
    counted: set[str] = field(default_factory=set)
    snapshot: set[str] = field(default_factory=set)
    name: str = ""

    @property
    def first(self) -> Record:
        return self.images[0]

    @property
    def exited(self) -> bool:
        return "exit" in self.images[-1].markers

    def label(self) -> str:
        return self.name or describe(self.first.argv)


def describe(argv: list[str]) -> str:
    """A short name for a process: ``kernel``, ``stats_frames.py``, ``python -c``..."""
    args = argv[1:]
    if "ipykernel_launcher" in args:
        return "kernel"
    if args[:1] == ["-c"]:
        code = args[1] if len(args) > 1 else ""
        for part, name in [
            ("resource_tracker", "mp-resource-tracker"),
            ("spawn_main", "mp-spawn-worker"),
            ("forkserver", "mp-forkserver"),
        ]:
            if part in code:
                return name
        return "python -c"
    if args[:1] == ["-m"]:
        return f"-m {args[1]}"
    return Path(args[0]).name if args else "python"


def _own_command(argv: list[str]) -> bool:
    args = argv[1:]
    return bool(args) and (
        Path(args[0]).name == "popularity-contest" or args[:2] == ["-m", "popularity_contest"]
    )


@dataclass
class Expected:
    packages: Counter[str]
    processes: int
    per_process: list[Process]

    def who(self, package: str) -> str:
        """Which reporting processes imported ``package`` after their user code started."""
        return _labels(p for p in self.per_process if p.covered and package in p.counted)

    def before(self, package: str) -> str:
        """Which reporting processes had ``package`` before their user code started."""
        return _labels(p for p in self.per_process if p.covered and package in p.snapshot)


def _labels(processes: Iterable[Process]) -> str:
    labels = Counter(p.label() for p in processes)
    return ", ".join(f"{label} x{n}" if n > 1 else label for label, n in sorted(labels.items()))


def expected(truth_dir: Path, route: str, dists: Distributions) -> Expected:
    """What the collector should hold after a workload under ``route``
    (``ipython``, ``site`` or ``both``)."""
    records = [parse(path) for path in sorted(truth_dir.glob("*.log"))]
    by_ident = {r.ident: r for r in records}
    countable = dists.countable()

    # Exec'd images: the same pid, the earlier one ended with "exec".
    processes: list[Process] = []
    open_exec: dict[int, Process] = {}
    for record in sorted((r for r in records if r.fork_parent is None), key=lambda r: r.start):
        previous = open_exec.pop(record.pid, None)
        if previous is not None:
            previous.images.append(record)
            process = previous
        else:
            process = Process([record])
            processes.append(process)
        if "exec" in record.markers:
            open_exec[record.pid] = process
    by_image = {id(image): p for p in processes for image in p.images}

    def covered(record: Record, ipython: bool) -> bool:
        site = not record.isolated and not _own_command(record.argv)
        return {"ipython": ipython, "site": site, "both": ipython or site}[route]

    by_pid = {p.first.pid: p for p in processes}
    for process in processes:
        process.covered = any(covered(image, image.ipython) for image in process.images)
        parent = by_pid.get(process.first.ppid)
        if parent is not None and parent is not process:
            process.name = f"{describe(process.first.argv)}<{describe(parent.first.argv)}"
        if process.covered:
            for image in process.images:
                process.counted |= {n for n in image.user_names() if _counted(n, countable)}
                process.snapshot |= {n for n in image.snapshot_names() if _counted(n, countable)}

    forks: list[Process] = []
    for record in records:
        if record.fork_parent is None:
            continue
        root = record
        while root.fork_parent is not None:
            root = by_ident[root.fork_parent]
        parent = by_image[id(root)]
        child = Process([record], covered=parent.covered, fork=True)
        child.name = f"{parent.label()}[fork]"
        if child.covered:
            # Markers the parent had seen are inherited: a child forked after user code
            # started counts everything it imports.
            child.counted = {n for n in record.user_names() if _counted(n, countable)}
        forks.append(child)

    packages: Counter[str] = Counter()
    for process in processes + forks:
        if process.covered:
            packages.update(process.counted)
    reporting = sum(1 for p in processes if p.covered and (p.counted or p.exited))
    return Expected(packages, reporting, processes + forks)


def _counted(name: str, countable: dict[str, set[str]]) -> bool:
    return not name.startswith("_") and name in countable


def mismatch_table(expected: Counter[str], observed: Counter[str], truth: Expected) -> str:
    """Rows for every package whose counts differ, with the processes that imported it."""
    rows = []
    for package in sorted(set(expected) | set(observed)):
        want, got = expected.get(package, 0), observed.get(package, 0)
        if want != got:
            who, before = truth.who(package) or "-", truth.before(package) or "-"
            rows.append((package, str(want), str(got), f"{got - want:+d}", who, before))
    if not rows:
        return ""
    head = ("package", "truth", "collector", "diff", "imported by (truth)", "snapshot of")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i < 5 else cell for i, cell in enumerate(row)).rstrip()
        for row in [head, *rows]
    ]
    return "\n".join(lines)


def save(path: Path, truth: Expected, observed: Counter[str], processes: int) -> None:
    """Everything a person needs to chase a mismatch, as JSON."""
    path.write_text(
        json.dumps(
            {
                "expected": dict(sorted(truth.packages.items())),
                "observed": dict(sorted(observed.items())),
                "expected_processes": truth.processes,
                "observed_processes": processes,
                "processes": [
                    {
                        "label": p.label(),
                        "argv": p.first.argv,
                        "pids": [i.pid for i in p.images],
                        "fork": p.fork,
                        "covered": p.covered,
                        "exited": p.exited,
                        "counted": sorted(p.counted),
                    }
                    for p in truth.per_process
                ],
            },
            indent=1,
        )
    )
