"""An environment's requirement graph: who requires whom, with extras and markers.

``Requirements(installed, marker_environment)`` parses each installed distribution's raw
``Requires-Dist`` with ``packaging``; ``edges`` are one distribution's requirements that apply
(markers evaluated against the target's PEP 508 environment, with an extra), ``closure`` is
everything some roots need, transitively, following extras. Names are PEP 503 normalised
(``normalize``). When in doubt, keep: a requirement that cannot be parsed, or whose marker
cannot be evaluated, counts as required.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

if TYPE_CHECKING:
    from popularity_contest.answers.environment import Installed


def normalize(name: str) -> str:
    """PEP 503 normalised name (``packaging.utils.canonicalize_name``)."""
    return str(canonicalize_name(name))


Edge = tuple[str, frozenset[str]]  # (required distribution, extras it is required with)


class Requirements:
    """The requirement graph of an environment, with extras and markers (``packaging``).

    ``edges(name, extra)`` are the requirements of distribution ``name`` that apply when it
    is installed for ``extra`` (``""``: its own requirements, no extra), markers evaluated
    against the target's marker environment with ``extra`` set. Only installed targets.
    """

    def __init__(self, installed: Sequence[Installed], environment: Mapping[str, str]) -> None:
        self._environment = dict(environment)
        self._installed = {d.distribution for d in installed}
        self._parsed: dict[str, list[tuple[str, frozenset[str], Marker | None]]] = {}
        self._cache: dict[tuple[str, str], list[Edge]] = {}
        for dist in installed:
            parsed: list[tuple[str, frozenset[str], Marker | None]] = []
            for text in dist.requires:
                try:
                    requirement = Requirement(text)
                except InvalidRequirement:
                    # Unparseable: keep whatever it names, under every extra (when in doubt,
                    # keep).
                    name = text.split(";", 1)[0].strip()
                    for stop in "[(<>=!~ ":
                        name = name.split(stop, 1)[0]
                    if name:
                        parsed.append((normalize(name), frozenset(), None))
                    continue
                extras = frozenset(normalize(e) for e in requirement.extras)
                parsed.append((normalize(requirement.name), extras, requirement.marker))
            self._parsed[dist.distribution] = parsed

    def _applies(self, marker: Marker | None, extra: str) -> bool:
        if marker is None:
            return True
        try:
            return marker.evaluate({**self._environment, "extra": extra})
        except Exception:  # an unknown variable or a malformed value: keep it
            return True

    def edges(self, name: str, extra: str = "") -> list[Edge]:
        key = (name, extra)
        found = self._cache.get(key)
        if found is None:
            found = [
                (target, extras)
                for target, extras, marker in self._parsed.get(name, ())
                if target in self._installed and self._applies(marker, extra)
            ]
            self._cache[key] = found
        return found

    def closure(self, roots: Iterable[str]) -> dict[str, set[str]]:
        """Every distribution ``roots`` need, transitively, with who needs it (roots: ``{}``).

        Extras requested on the way are followed: ``nbconvert`` -> ``bleach[css]`` adds
        ``bleach``'s ``css`` requirements (``tinycss2``).
        """
        reached: dict[str, set[str]] = {}
        todo: list[tuple[str, str, str | None]] = [
            (r, "", None) for r in roots if r in self._installed
        ]
        seen: set[tuple[str, str]] = set()
        while todo:
            name, extra, parent = todo.pop()
            parents = reached.setdefault(name, set())
            if parent is not None and parent != name:
                parents.add(parent)
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for target, extras in self.edges(name, extra):
                todo.append((target, "", name))
                todo.extend((target, e, name) for e in extras)
        return reached
