"""Acceptance: what an operator does, on a real JupyterLab + data-science environment.

1. Build (or reuse) the cached environment (``envbuild``), build popularity-contest's wheel
   from this checkout and install it non-editable with the ``collector`` extra.
2. For each activation route (``install ipython``, ``install site``, both; ``uninstall``
   after each), start ``popularity-contest serve`` on free loopback ports, run the workload
   (``workload``) with the reporter pointed at it and the independent recorder on, and
   compare every package's count and the processes counter with the truth (``truth``):
   exact equality.
3. Feed ``popularity-contest unused --since 1d --format requirements`` (default threshold,
   and ``--min-processes 5``; the store of the ``both`` run) to ``pip uninstall -r`` in a
   fresh copy of the environment with both activations installed (dated two days back, as
   on an environment activated before the window), run ``pip check``, JupyterLab's HTML
   export, and the whole workload again: nothing may break.

``POPCON_ACCEPTANCE=reduced`` (CI) runs the ``both`` route and the default threshold only.
Artifacts of the last run (truth logs, collector stores, per-package comparisons as JSON,
figures) are in ``<cache>/last-run/``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.acceptance import envbuild, truth
from tests.acceptance.conftest import MODE
from tests.acceptance.envbuild import BuiltEnv, log, run
from tests.acceptance.workload import Collector, Outcome, check_jupyterlab, run_workload

ROUTES = {"ipython": ("ipython",), "site": ("site",), "both": ("ipython", "site")}
ROUTE_NAMES = ["both"] if MODE == "reduced" else ["ipython", "site", "both"]
THRESHOLDS = [1] if MODE == "reduced" else [1, 5]


@dataclass
class RouteRun:
    route: str
    run_dir: Path
    db: Path
    outcomes: list[Outcome]
    expected: truth.Expected
    observed: Counter[str]
    processes: int
    user_packages: Counter[str]
    report_rows: list[dict[str, object]]
    report_processes: int | None


class Acceptance:
    """Session state: the environment, the wheel, and the runs done so far."""

    def __init__(self, env: BuiltEnv, wheel: Path, root: Path) -> None:
        self.env = env
        self.wheel = wheel
        self.root = root
        self.ready = False  # the environment holds the wheel and the recorder, no removal
        self.runs: dict[str, RouteRun] = {}
        self.figures: dict[str, object] = {
            "python": env.python_version,
            "distributions": env.distributions,
            "build_seconds": round(env.build_seconds),
            "environment_reused_from_cache": env.reused,
            "routes": {},
            "unused": {},
        }
        self._dists: truth.Distributions | None = None

    def prepare(self) -> None:
        """A fresh copy of the environment with popularity-contest and the recorder."""
        self.env.fresh()
        self.env.install_popcon(self.wheel)
        self.env.install_truth()
        self.ready = True

    def distributions(self) -> truth.Distributions:
        if self._dists is None:
            out = run([self.env.python, "-I", "-c", truth.PROBE])
            self._dists = truth.Distributions(json.loads(out))
        return self._dists

    def activation_files(self) -> list[str]:
        """Files in the environment that mention popularity_contest and could activate it."""
        site = self.env.site_packages()
        candidates = [*site.glob("*.pth"), *(self.env.root / "etc").rglob("startup/*.py")]
        return sorted(
            str(p) for p in candidates if "popularity_contest" in p.read_text(errors="replace")
        )

    def route(self, route: str) -> RouteRun:
        if route in self.runs:
            return self.runs[route]
        if not self.ready:
            self.prepare()
        assert self.activation_files() == [], "activation left over before the run"
        for way in ROUTES[route]:
            self.env.popcon("install", way)
        run_dir = self.root / f"route-{route}"
        truth_dir = run_dir / "truth"
        truth_dir.mkdir(parents=True)
        db = run_dir / "popcon.sqlite3"
        log(f"route {route}: workload")
        collector = Collector(self.env, db)
        try:
            outcomes = run_workload(self.env, run_dir, collector.statsd_port, truth_dir)
            collector.sync()
            observed = collector.totals("imported_package")
            processes = sum(collector.totals("processes_reported").values())
            user_packages = collector.totals("user_imported_package")
        finally:
            collector.stop()
        for way in ROUTES[route]:
            self.env.popcon("uninstall", way)
        assert self.activation_files() == [], "uninstall left activation files behind"
        report = json.loads(self.env.popcon("report", "--db", db, "--format", "json"))
        # A list of rows (0.5.0.dev0 before the answers rework), or a document with the
        # window, the processes denominator and the rows.
        rows = report["rows"] if isinstance(report, dict) else report
        report_processes = report.get("processes") if isinstance(report, dict) else None
        expected = truth.expected(truth_dir, route, self.distributions())
        truth.save(run_dir / "comparison.json", expected, observed, processes)
        result = RouteRun(
            route, run_dir, db, outcomes, expected, observed, processes, user_packages,
            rows, report_processes,
        )  # fmt: skip
        self.runs[route] = result
        return result


@pytest.fixture(scope="session")
def acceptance() -> Iterator[Acceptance]:
    started = time.monotonic()
    root = envbuild.CACHE / "last-run"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    env = envbuild.build()
    wheel = envbuild.build_wheel(root / "wheel")
    log(f"wheel {wheel.name}")
    state = Acceptance(env, wheel, root)
    yield state
    state.figures["seconds"] = round(time.monotonic() - started)
    (root / "figures.json").write_text(json.dumps(state.figures, indent=1))
    log("figures:\n" + json.dumps(state.figures, indent=1))


@pytest.mark.parametrize("route", ROUTE_NAMES)
def test_counts_equal_the_truth(acceptance: Acceptance, route: str) -> None:
    """Every package's count and the processes counter equal what really happened."""
    result = acceptance.route(route)
    expected = result.expected
    problems = [f"workload step failed with the reporter on:\n{o.describe()}"
                for o in result.outcomes if o.failed]  # fmt: skip
    table = truth.mismatch_table(expected.packages, result.observed, expected)
    names = set(expected.packages) | set(result.observed)
    exact = sum(1 for n in names if expected.packages.get(n, 0) == result.observed.get(n, 0))
    acceptance.figures["routes"][route] = {  # type: ignore[index]
        "packages_exact": exact,
        "packages": len(names),
        "processes_truth": expected.processes,
        "processes_collector": result.processes,
        "workload_failures": sum(o.failed for o in result.outcomes),
    }
    log(f"route {route}: {exact} of {len(names)} packages exact; processes truth "
        f"{expected.processes}, collector {result.processes}")  # fmt: skip
    if table:
        problems.append(
            f"route {route}: {len(names) - exact} of {len(names)} packages differ "
            f"(truth = recorder + documented rules; details in {result.run_dir}):\n{table}"
        )
    if result.processes != expected.processes:
        problems.append(
            f"route {route}: processes_reported is {result.processes}, but "
            f"{expected.processes} reporting processes ran"
        )
    if result.user_packages:
        problems.append(
            f"user_imported_package counted without a user site: {result.user_packages}"
        )
    report = {str(row["package"]): row["count"] for row in result.report_rows}
    if result.report_processes not in (None, result.processes):
        problems.append(
            f"`report --format json` says {result.report_processes} processes, "
            f"the API {result.processes}"
        )
    if report != dict(result.observed):
        problems.append(
            f"`report --format json` disagrees with the API: {report} != {dict(result.observed)}"
        )
    problems += direct_problems(result.report_rows)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


#: What the workload's own code imports (notebook cells, scripts, `python -c`, a pool task
#: in the user's script, the killed kernels' cells), and the console tools it runs (their
#: generated `__main__` imports the package: the user ran that tool).
USER_IMPORTS = frozenset(
    {"numpy", "scipy", "sklearn", "pandas", "matplotlib", "seaborn", "networkx", "sympy",
     "tqdm", "bs4", "requests", "yaml", "six"}
)  # fmt: skip
TOOLS = frozenset({"black", "pygments", "jupyter_core"})
#: Imported only by libraries in the workload, never by its own code.
LIBRARY_ONLY = frozenset(
    {"threadpoolctl", "joblib", "kiwisolver", "pyparsing", "cycler", "mpmath",
     "charset_normalizer", "urllib3", "idna", "certifi", "soupsieve", "pytz", "dateutil"}
)  # fmt: skip


def direct_problems(rows: list[dict[str, object]]) -> list[str]:
    """Direct counts: never above the processes count, present for what the workload's code
    imports, absent for what only libraries import; the top of the direct ranking is the
    workload's own imports."""
    direct = {str(r["package"]): r.get("direct") for r in rows}
    count = {str(r["package"]): r["count"] for r in rows}
    problems = []
    above = {p: (d, count[p]) for p, d in direct.items() if d is not None and d > count[p]}  # type: ignore[operator]
    if above:
        problems.append(f"direct above processes (direct, processes): {above}")
    missing = sorted(p for p in USER_IMPORTS & set(count) if not direct.get(p))
    if missing:
        problems.append(f"imported by the workload's own code but direct is 0: {missing}")
    wrong = sorted(p for p in LIBRARY_ONLY & set(count) if direct.get(p))
    if wrong:
        problems.append(f"imported only by libraries but counted as direct: {wrong}")
    top = sorted((p for p in direct if direct[p]), key=lambda p: -float(direct[p] or 0))[:5]
    strangers = [p for p in top if p not in USER_IMPORTS | TOOLS]
    if strangers:
        problems.append(f"top of the direct ranking is not the workload's imports: {top}")
    return problems


@pytest.mark.parametrize("min_processes", THRESHOLDS)
def test_removing_every_unused_candidate_breaks_nothing(
    acceptance: Acceptance, min_processes: int
) -> None:
    """``unused --format requirements`` fed to ``pip uninstall -r``, then everything again."""
    observed = acceptance.route("both")
    acceptance.prepare()
    env = acceptance.env
    for way in ROUTES["both"]:
        env.popcon("install", way)
    # As on an environment activated long ago: `unused` trusts an activation only for a
    # window that starts after it was installed (the files' modification time), and every
    # observation in the store was made with both activations in place.
    activated = time.time() - 2 * 86400
    for path in acceptance.activation_files():
        os.utime(path, (activated, activated))
    acceptance.ready = False  # packages are about to be removed
    run_dir = acceptance.root / f"unused-{min_processes}"
    run_dir.mkdir()
    args: list[str | Path] = ["unused", "--python", env.python, "--db", observed.db]
    args += ["--since", "1d"]
    if min_processes != 1:
        args += ["--min-processes", str(min_processes)]
    document = json.loads(env.popcon(*args, "--format", "json"))
    (run_dir / "unused.json").write_text(json.dumps(document, indent=1))
    # A list of verdicts, or a document with them under "distributions".
    verdicts = document["distributions"] if isinstance(document, dict) else document
    requirements = env.popcon(*args, "--format", "requirements")
    (run_dir / "remove.txt").write_text(requirements)
    candidates = [line.split("==")[0] for line in requirements.split() if line.strip()]
    log(f"unused (threshold {min_processes}): {len(candidates)} candidates: {' '.join(candidates)}")

    problems = []
    # The promise, checked against the truth: no candidate provides a package that was used.
    dists = acceptance.distributions()
    for name in candidates:
        tops = dists.info.get(name, {}).get("tops", [])  # type: ignore[attr-defined]
        used = sorted(t for t in tops if observed.expected.packages.get(t))
        if used:
            detail = ", ".join(f"{t} ({observed.expected.who(t)})" for t in used)
            problems.append(f"candidate {name} provides packages the workload imported: {detail}")

    if candidates:
        env.pip("uninstall", "--yes", "-r", run_dir / "remove.txt")
    check = _pip_check(env)
    if check:
        problems.append(f"pip check after removal:\n{check}")

    truth_dir = run_dir / "truth"
    truth_dir.mkdir()
    collector = Collector(env, run_dir / "popcon.sqlite3")
    try:
        outcomes = run_workload(env, run_dir, collector.statsd_port, truth_dir)
        lab = check_jupyterlab(env, run_dir, collector.statsd_port,
                               run_dir / "work" / "notebooks" / "pandas_numpy.ipynb")  # fmt: skip
    finally:
        collector.stop()
    problems += [
        f"workload step failed after removal:\n{o.describe()}" for o in outcomes if o.failed
    ]
    problems += [f"JupyterLab after removal: {p}" for p in lab]
    verdict_counts = Counter(str(row.get("verdict")) for row in verdicts)
    acceptance.figures["unused"][f"min_processes={min_processes}"] = {  # type: ignore[index]
        "candidates": len(candidates),
        "verdicts": dict(verdict_counts),
        "workload_failures": sum(o.failed for o in outcomes),
        "jupyterlab_problems": len(lab),
        "pip_check_ok": not check,
        "promise_violations": sum(p.startswith("candidate ") for p in problems),
    }
    if problems:
        pytest.fail(
            f"threshold {min_processes}: removing {len(candidates)} candidates "
            f"({' '.join(candidates)}):\n\n" + "\n\n".join(problems),
            pytrace=False,
        )


def _pip_check(env: BuiltEnv) -> str:
    """``pip check``'s complaints (empty when it is happy)."""
    try:
        env.pip("check")
    except AssertionError as error:
        return str(error)
    return ""
