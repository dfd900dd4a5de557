"""Import names grouped by the distribution that provides them, for reports people read.

The reporter counts top-level import names (``sklearn``, ``PIL``); people know distributions
(``scikit-learn``, ``pillow``). :func:`group` turns a source's per-name counts into
per-distribution :class:`~popularity_contest.answers.ranking.Entry` values that
:func:`~popularity_contest.answers.ranking.rank` orders like package rows. Which names a
distribution provides comes from an environment's probe
(:func:`popularity_contest.answers.environment.inspect`: the reporter's own rule).

Per hub, for each distribution:

* ``count``: what ``unused`` shows in its processes column
  (:func:`~popularity_contest.answers.unused.processes_of`): the largest count among its
  import names, a lower bound when several of them were imported, or its ``library_used``
  count, exact, where the reporter sent one at least as large;
* ``direct``: the largest direct count among its import names; a lower bound when several
  of them were imported directly (no per-distribution direct counter exists).

Summed over hubs when not grouped by hub (each process belongs to one hub), exact only where
every hub's figure is. An import name that no distribution of the environment provides, or
that several provide (a namespace package such as ``google``), is not attributed to any:
it stays a row of its own, ``provided`` False, with its own counts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from popularity_contest.answers.environment import Installed
from popularity_contest.answers.ranking import Entry
from popularity_contest.answers.unused import processes_of

Counts = Mapping[tuple[str, str], float]


def _per_hub(counts: Counts) -> dict[str, dict[str, float]]:
    hubs: dict[str, dict[str, float]] = {}
    for (hub, name), value in counts.items():
        names = hubs.setdefault(hub, {})
        names[name] = names.get(name, 0.0) + value
    return hubs


def providers(installed: Iterable[Installed]) -> dict[str, list[str]]:
    """``{import name: [distributions providing it]}`` (PEP 503 names, sorted)."""
    found: dict[str, list[str]] = {}
    for dist in installed:
        for name in dist.packages:
            found.setdefault(name, []).append(dist.distribution)
    return {name: sorted(set(dists)) for name, dists in found.items()}


def group(
    installed: Sequence[Installed],
    packages: Counts,
    direct: Counts | None = None,
    library_used: Counts | None = None,
) -> dict[tuple[str, str], Entry]:
    """``{(namespace, distribution or unattributed import name): Entry}``.

    ``packages``, ``direct``: ``{(namespace, import name): processes}`` as a source's
    ``packages()``/``direct()`` give them; ``library_used``: ``{(namespace, distribution):
    processes}`` (a source's ``distributions()``), PEP 503 names. Entries whose counts are
    all 0 are left out.
    """
    owners = providers(installed)
    imports = _per_hub(packages)
    directs = _per_hub(direct or {})
    used = _per_hub(library_used or {})
    entries: dict[tuple[str, str], Entry] = {}
    for hub in sorted(set(imports) | set(directs) | set(used)):
        hub_imports = imports.get(hub, {})
        hub_direct = directs.get(hub, {})
        hub_used = used.get(hub, {})
        for dist in installed:
            own = [n for n in dist.packages if owners.get(n) == [dist.distribution]]
            shared = [n for n in dist.packages if n not in own]
            count, exact = processes_of(
                dataclasses.replace(dist, packages=own), hub_imports, hub_used
            )
            counted_direct = [hub_direct[n] for n in own if hub_direct.get(n, 0.0) > 0]
            direct_count = max(counted_direct, default=0.0)
            direct_exact = len(counted_direct) <= 1 and not any(
                hub_direct.get(n, 0.0) > 0 for n in shared
            )
            if count > 0 or direct_count > 0:
                entries[(hub, dist.distribution)] = Entry(
                    count, direct_count, exact, direct_exact, tuple(dist.packages)
                )
        for name in sorted(set(hub_imports) | set(hub_direct)):
            if len(owners.get(name, [])) == 1:
                continue
            count = hub_imports.get(name, 0.0)
            direct_count = hub_direct.get(name, 0.0)
            if count > 0 or direct_count > 0:
                key = (hub, name)
                entry = Entry(count, direct_count, packages=(name,), provided=False)
                # A distribution named like an unattributed import name: keep both figures
                # apart by never merging (the distribution's row wins the key).
                entries.setdefault(key, entry)
    return entries


def unattributed(entries: Mapping[tuple[str, str], Entry]) -> list[str]:
    """The import names kept as they are (no single distribution provides them), sorted."""
    return sorted({name for (_hub, name), e in entries.items() if not e.provided})
