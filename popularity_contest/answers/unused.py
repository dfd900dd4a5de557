"""Verdicts on installed distributions: which may go, and why each of the others stays.

``environment.inspect(python)`` lists what is installed in the target environment (a probe
run by path with the target interpreter); requirements and markers are then evaluated here,
in the command's process, with ``packaging`` (``requirements.Requirements``).

``judge`` gives each distribution one :class:`Verdict`, the first that applies (the members'
order):

``used``
    imported in the window by at least ``min_processes`` processes (1 without a threshold);
``hidden``
    imported in the window, by fewer processes than the privacy threshold: kept, and its
    count is not shown. Hidden is not unused;
``infrastructure``
    what serves or runs the users' code, whatever the counts say: ``pip``, ``setuptools``,
    ``wheel``, ``ipykernel``, ``ipython``, the Jupyter servers (``INFRASTRUCTURE``),
    enabled Jupyter server extensions, distributions shipping JupyterLab/notebook
    extensions, kernel specs, Jupyter configuration or Jupyter plugins (entry points), and
    popularity-contest itself;
``dependency``
    required by a ``used`` or ``hidden`` distribution;
``local``
    installed from a local directory or a VCS checkout (PEP 610 ``dir_info``/``vcs_info``,
    editable installs included): the reporter never counts those, so no evidence exists;
``commands``
    provides console or GUI scripts and the environment has no ``install site`` activation
    (or got it after the window started): running a command starts a process the reporter
    cannot observe. With ``install site`` for the whole window, running a command imports
    its package and is counted, so scripts are no reason to keep anything;
``startup``
    ships a ``.pth`` file with an ``import`` line: that code runs at interpreter start-up,
    before the reporter, so its imports are never counted;
``unused``
    none of the above: a removal candidate.

Every rule after ``hidden`` keeps the roots it names *and everything they require*,
transitively: a requirement with extras (``bleach[css]``) brings in those extras'
requirements (markers evaluated with each requested extra, against the target's marker
environment). A requirement that cannot be parsed, or whose marker cannot be evaluated,
counts as required: when in doubt, keep.

Only what pip can remove goes into ``--format requirements``: a ``unused`` distribution with
``*.dist-info`` metadata, a ``RECORD``, inside the environment's prefix, installed by pip or
uv (both write ``RECORD`` and ``INSTALLER``; ``pip uninstall`` removes either). One installed
by conda, the OS package manager or any other tool keeps its verdict but is left to that
tool (``manager`` says which).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from popularity_contest.answers.environment import Environment, Installed
from popularity_contest.answers.requirements import Requirements
from popularity_contest.answers.window import Window


class Verdict(enum.Enum):
    """A distribution's verdict; the members are in rule order (the first that applies wins).

    ``value`` is the word every output shows (table, JSON, CSV, the page). ``page_rank``
    orders the page's list: removal candidates first, then what the counts keep (``hidden``,
    ``dependency``, ``used``), then what a rule keeps whatever the counts say.
    """

    _value_: str
    page_rank: int

    USED = ("used", 3)
    HIDDEN = ("hidden", 1)
    INFRASTRUCTURE = ("infrastructure", 7)
    DEPENDENCY = ("dependency", 2)
    LOCAL = ("local", 6)
    COMMANDS = ("commands", 4)
    STARTUP = ("startup", 5)
    UNUSED = ("unused", 0)

    def __new__(cls, word: str, page_rank: int) -> Verdict:
        member = object.__new__(cls)
        member._value_ = word
        member.page_rank = page_rank
        return member


#: The verdicts a rule gives (applied in ``Verdict`` order): each keeps its roots and what
#: they require; a distribution kept only because a root requires it gets ``required by
#: <roots>`` and this note as its reason.
KEPT_BECAUSE = {
    Verdict.INFRASTRUCTURE: "",
    Verdict.DEPENDENCY: "",
    Verdict.LOCAL: " (installed from a local directory)",
    Verdict.COMMANDS: " (provides commands not observed)",
    Verdict.STARTUP: " (runs at start-up)",
}
#: Sort key of the rule order (``judge``'s output order).
_RULE_ORDER = {verdict: rank for rank, verdict in enumerate(Verdict)}
#: Infrastructure whatever the counts say (PEP 503 names) and why.
INFRASTRUCTURE = {
    "pip": "installer",
    "setuptools": "installer",
    "wheel": "installer",
    "uv": "installer",
    "ipykernel": "the Jupyter kernel",
    "ipython": "the shell the reporter's startup file runs in",
    "jupyter-server": "Jupyter server",
    "jupyterlab": "Jupyter server",
    "notebook": "Jupyter server",
    "nbclassic": "Jupyter server",
    "jupyterhub": "JupyterHub (single-user server)",
    "voila": "Jupyter server",
    "popularity-contest": "the reporter",
}
JUPYTER_DATA = {
    "labextension": "ships a JupyterLab extension",
    "nbextension": "ships a notebook extension",
    "kernelspec": "ships a Jupyter kernel",
    "config": "ships Jupyter configuration",
}
#: Entry-point groups that plug into the Jupyter server, its kernels or nbconvert.
JUPYTER_PLUGIN_GROUPS = ("jupyter", "nbconvert")


@dataclass
class Judgement:
    """One distribution and its verdict; ``processes`` is None when hidden by the threshold."""

    distribution: str
    version: str
    packages: list[str]
    processes: float | None
    exact: bool  # processes is exact (else a lower bound)
    verdict: Verdict
    reason: str
    required_by: list[str] = field(default_factory=list)
    manager: str = "pip"
    pip_removable: bool = True

    @property
    def candidate(self) -> bool:
        """A removal candidate ``pip uninstall`` may act on (``--format requirements``)."""
        return self.verdict is Verdict.UNUSED and self.pip_removable

    def as_dict(self) -> dict[str, object]:
        """The JSON shape (``unused --format json``'s ``distributions``); ``verdict`` its word."""
        processes: int | float | None = None
        if self.processes is not None:
            processes = int(self.processes) if self.processes.is_integer() else self.processes
        return {
            "distribution": self.distribution,
            "version": self.version,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "processes": processes,
            "processes_exact": self.exact if processes is not None else None,
            "packages": self.packages,
            "required_by": self.required_by,
            "manager": self.manager,
            "pip_removable": self.pip_removable,
        }


# --- counts --------------------------------------------------------------------------------
def processes_of(
    dist: Installed,
    imports: Mapping[str, float],
    library_used: Mapping[str, float] | None = None,
) -> tuple[float, bool]:
    """(processes that imported ``dist``, whether that figure is exact).

    The reporter counts each import name once per process, so the largest count among the
    distribution's names is a lower bound on the processes that imported any of them, exact
    when at most one of its names was imported at all. ``library_used`` (one count per
    distribution per process, sent when the reporter's distribution counting is on) is
    exact where every process had it on; the larger figure wins.
    """
    counts = [imports.get(p, 0.0) for p in dist.packages]
    counted = [c for c in counts if c > 0]
    lower = max(counted, default=0.0)
    exact = len(counted) <= 1
    if library_used:
        per_dist = library_used.get(dist.distribution, 0.0)
        if per_dist >= lower and per_dist > 0:
            return per_dist, True
    return lower, exact


def _why_infrastructure(dist: Installed, extensions: set[str]) -> str | None:
    if dist.distribution in INFRASTRUCTURE:
        return INFRASTRUCTURE[dist.distribution]
    if extensions.intersection(dist.packages):
        return "enabled Jupyter server extension"
    for kind in dist.jupyter:
        if kind in JUPYTER_DATA:
            return JUPYTER_DATA[kind]
    for group in dist.entry_point_groups:
        if group.startswith(JUPYTER_PLUGIN_GROUPS):
            return f"Jupyter plugin ({group} entry point)"
    return None


def _required_by(parents: set[str], what: str = "") -> str:
    return "required by " + ", ".join(sorted(parents)) + what


def _roots(environment: Environment, span: Window | None) -> dict[Verdict, dict[str, str]]:
    """``{verdict: {distribution: reason}}``: what each rule keeps by itself (not yet what
    those distributions require, nor ``dependency``'s roots, which the counts give)."""
    installed = environment.distributions
    extensions = set(environment.server_extensions)
    roots: dict[Verdict, dict[str, str]] = {v: {} for v in KEPT_BECAUSE}
    site = environment.site_covers(span)
    for dist in installed:
        name = dist.distribution
        why = _why_infrastructure(dist, extensions)
        if why is not None:
            roots[Verdict.INFRASTRUCTURE][name] = why
        if dist.local in ("directory", "vcs"):
            roots[Verdict.LOCAL][name] = (
                f"installed from a {'VCS checkout' if dist.local == 'vcs' else 'local directory'}"
                " (PEP 610): the reporter does not count it"
            )
        if dist.scripts and not site:
            shown = ", ".join(dist.scripts[:3]) + (", ..." if len(dist.scripts) > 3 else "")
            roots[Verdict.COMMANDS][name] = (
                f"provides commands ({shown}); "
                + (
                    "`install site` is newer than the window's start"
                    if environment.present("site")
                    else "without `install site`"
                )
                + ", activation cannot observe them"
            )
        if dist.pth_imports:
            roots[Verdict.STARTUP][name] = (
                "a .pth file runs its code at start-up, before the reporter can observe it"
            )
    return roots


def _required_by_map(
    installed: Sequence[Installed],
    graph: Requirements,
    closures: Mapping[Verdict, Mapping[str, set[str]]],
) -> dict[str, set[str]]:
    """``{distribution: the distributions that require it}``, directly or through a rule."""
    required_by: dict[str, set[str]] = {}
    for dist in installed:
        for target, _extras in graph.edges(dist.distribution):
            required_by.setdefault(target, set()).add(dist.distribution)
    for closure in closures.values():
        for name, parents in closure.items():
            required_by.setdefault(name, set()).update(parents)
    return required_by


def _verdict(  # noqa: PLR0917 - private, one caller
    name: str,
    used: set[str],
    hidden: set[str],
    threshold: int,
    roots: Mapping[Verdict, Mapping[str, str]],
    closures: Mapping[Verdict, Mapping[str, set[str]]],
) -> tuple[Verdict, str]:
    """(verdict, reason) of one distribution: the first ``Verdict`` that applies."""
    if name in used:
        return Verdict.USED, "imported"
    if name in hidden:
        return Verdict.HIDDEN, (
            f"imported by fewer than {threshold} processes (privacy threshold):"
            " kept, count not shown"
        )
    for candidate in Verdict:  # only rules have closures
        closure = closures.get(candidate, {})
        if name not in closure:
            continue
        root_reason = roots[candidate].get(name)
        if root_reason:
            return candidate, root_reason
        parents = {p for p in closure[name] if p in closure}
        return candidate, _required_by(parents, KEPT_BECAUSE[candidate])
    return Verdict.UNUSED, "not imported in the window; nothing kept needs it"


def judge(
    environment: Environment,
    imports: Mapping[str, float],
    *,
    min_processes: int | None = None,
    span: Window | None = None,
    library_used: Mapping[str, float] | None = None,
) -> list[Judgement]:
    """A judgement per distribution of ``environment``, in ``Verdict`` (rule) order.

    ``imports``: processes that imported each top-level name in the window (every count,
    before the privacy threshold, which this function applies itself); ``library_used``:
    processes per PEP 503 distribution name, where the reporter sent those. ``span`` is the
    window, to tell whether ``install site`` was present for all of it.
    """
    installed = environment.distributions
    threshold = max(1, min_processes or 1)
    graph = Requirements(installed, environment.marker_environment)
    by_name = {d.distribution: d for d in installed}
    counts = {d.distribution: processes_of(d, imports, library_used) for d in installed}
    used = {n for n, (c, _) in counts.items() if c >= threshold}
    hidden = {n for n, (c, _) in counts.items() if 0 < c < threshold}

    roots = _roots(environment, span)
    for name in used | hidden:
        roots[Verdict.DEPENDENCY][name] = ""
    closures = {verdict: graph.closure(names) for verdict, names in roots.items() if names}
    required_by = _required_by_map(installed, graph, closures)

    verdicts: list[Judgement] = []
    for dist in installed:
        name = dist.distribution
        count, exact = counts[name]
        processes: float | None = None if name in hidden else count
        verdict, reason = _verdict(name, used, hidden, threshold, roots, closures)
        verdicts.append(
            Judgement(
                distribution=name,
                version=dist.version,
                packages=list(dist.packages),
                processes=processes,
                exact=exact,
                verdict=verdict,
                reason=reason,
                required_by=sorted(required_by.get(name, set()) - {name}),
                manager=by_name[name].manager,
                pip_removable=dist.pip_removable,
            )
        )
    verdicts.sort(key=lambda v: (_RULE_ORDER[v.verdict], -(v.processes or 0.0), v.distribution))
    return verdicts


def imports_per_package(packages: Mapping[tuple[str, str], float]) -> dict[str, float]:
    """``{package: processes}`` summed over hubs, from a source's ``packages()``."""
    found: dict[str, float] = {}
    for (_namespace, package), count in packages.items():
        found[package] = found.get(package, 0.0) + count
    return found
