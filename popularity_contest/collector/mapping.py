"""statsd_exporter's mapping rules: load the YAML file, turn a statsd name into a series.

The file format and its semantics are prometheus/statsd_exporter's (``pkg/mapper``), so the
one file in ``deploy/`` configures both pipelines:

* ``match_type: glob`` (the default): ``*`` stands for exactly one dot-separated component,
  anything else must equal its component; ``$1`` .. ``$n`` (or ``${1}``) in ``name`` and
  ``labels`` are the components the stars matched, and a reference to a capture that does
  not exist becomes the empty string.
* ``match_type: regex``: a regular expression searched in the name; ``$1``, ``${1}``,
  ``$name`` and ``${name}`` refer to its groups. Glob rules are tried before regex rules.
* The first rule that matches wins (rules are tried in file order); ``match_metric_type``
  restricts a rule to ``counter``, ``gauge`` or ``observer`` events; ``action: drop``
  discards what it matches; ``scale`` multiplies the value; ``honor_labels`` lets tags sent
  with a line win over the rule's labels.
* The mapped name is escaped as statsd_exporter escapes it (anything but ``[A-Za-z0-9_]``
  becomes ``_``, a leading digit gets a ``_``).

Loading checks what statsd_exporter checks (unknown keys, names, label names, glob syntax,
regex syntax) and raises ``MappingError`` naming the file and the offending rule. Options
that only concern observers (``observer_type``, ``histogram_options``, ``summary_options``,
``ttl``) are accepted and ignored: the collector keeps counters only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from popularity_contest.errors import PopconError

PACKAGED_MAPPING = "statsd-mapping.yaml"

#: statsd type -> the metric type a rule's ``match_metric_type`` names.
METRIC_TYPES = {"c": "counter", "g": "gauge", "ms": "observer", "h": "observer", "d": "observer"}

_GLOB_MATCH = re.compile(r"^(\*|[a-zA-Z_][a-zA-Z0-9_\-]*)(\.\*|\.[a-zA-Z0-9_][a-zA-Z0-9_\-]*)*$")
_TEMPLATE = r"(\$\{?\d+\}?)"
_NAME = re.compile(rf"^([a-zA-Z_]|{_TEMPLATE})([a-zA-Z0-9_]|{_TEMPLATE})*$")
# statsd_exporter's own pattern: note the `+`, so a label name has at least two characters.
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]+$")
_GLOB_REFERENCE = re.compile(r"\$\{?([a-zA-Z0-9_$]+)\}?")
_REGEX_REFERENCE = re.compile(r"\$(?:\{([^}]*)\}|([a-zA-Z0-9_]+)|(\$))")
_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_]")

_RULE_KEYS = frozenset(
    {
        "match",
        "name",
        "labels",
        "honor_labels",
        "observer_type",
        "match_type",
        "help",
        "action",
        "match_metric_type",
        "ttl",
        "summary_options",
        "histogram_options",
        "scale",
    }
)
_DEFAULT_KEYS = frozenset(
    {
        "observer_type",
        "match_type",
        "glob_disable_ordering",
        "ttl",
        "summary_options",
        "histogram_options",
    }
)


class MappingError(PopconError, ValueError):
    """The mapping file cannot be used; the message names the file and the rule."""


def escape_metric_name(name: str) -> str:
    """Replace what a Prometheus name cannot hold with ``_``, as statsd_exporter does."""
    escaped = _INVALID_NAME_CHARS.sub("_", name)
    return "_" + escaped if escaped[:1].isdigit() else escaped


def _glob_template(template: str, captures: int) -> list[str | int]:
    """Split a glob rule's template into literal text and capture indexes (0-based)."""
    parts: list[str | int] = []
    position = 0
    for found in _GLOB_REFERENCE.finditer(template):
        parts.append(template[position : found.start()])
        reference = found.group(1)
        if reference.isdigit() and 1 <= int(reference) <= captures:
            parts.append(int(reference) - 1)
        # Anything else (too large, a name) becomes "", as in statsd_exporter.
        position = found.end()
    parts.append(template[position:])
    return [part for part in parts if part != ""]


@dataclass
class Rule:
    """One mapping rule, checked and compiled."""

    index: int
    match: str
    name: str
    labels: dict[str, str]
    match_type: str = "glob"
    action: str = "map"
    match_metric_type: str = ""
    honor_labels: bool = False
    help: str = ""
    scale: float | None = None
    # Compiled forms.
    components: tuple[str | None, ...] = ()
    regex: re.Pattern[str] | None = None
    name_parts: list[str | int] = field(default_factory=list)
    label_parts: dict[str, list[str | int]] = field(default_factory=dict)

    def describe(self) -> str:
        return f"rule {self.index + 1} (match {self.match!r})"


@dataclass(frozen=True)
class Mapped:
    """What a rule made of one statsd name."""

    rule: Rule
    name: str
    labels: dict[str, str]

    @property
    def drop(self) -> bool:
        return self.rule.action == "drop"


def _fill(parts: list[str | int], captures: list[str]) -> str:
    return "".join(part if isinstance(part, str) else captures[part] for part in parts)


class Mapper:
    """A loaded mapping file; ``map(name, stat_type)`` applies it (pure, thread-safe)."""

    def __init__(self, rules: list[Rule], source: str) -> None:
        self.rules = rules
        self.source = source
        self._globs_by_length: dict[int, list[Rule]] = {}
        for rule in rules:
            if rule.match_type == "glob":
                self._globs_by_length.setdefault(len(rule.components), []).append(rule)
        self._regexes = [(rule, rule.regex) for rule in rules if rule.regex is not None]
        #: HELP text by mapped name (the first rule giving one).
        self.help: dict[str, str] = {}
        for rule in rules:
            if rule.help and "$" not in rule.name:
                self.help.setdefault(escape_metric_name(rule.name), rule.help)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Mapper:
        """Load a mapping file, or the rules shipped in the package when ``path`` is None."""
        if path is None:
            source = f"packaged {PACKAGED_MAPPING}"
            try:
                text = resources.files(__package__).joinpath(PACKAGED_MAPPING).read_text("utf-8")
            except OSError as error:
                raise MappingError(f"{source}: cannot read it: {error}") from None
        else:
            source = str(path)
            try:
                text = Path(path).read_text("utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise MappingError(f"{source}: cannot read it: {error}") from None
        return cls.from_yaml(text, source)

    @classmethod
    def from_yaml(cls, text: str, source: str = "<mapping>") -> Mapper:
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as error:
            where = getattr(error, "problem_mark", None)
            line = f" at line {where.line + 1}" if where is not None else ""
            problem = getattr(error, "problem", None) or type(error).__name__
            raise MappingError(f"{source}: not valid YAML{line}: {problem}") from None
        if document is None:
            document = {}
        if not isinstance(document, MappingABC):
            raise MappingError(f"{source}: expected a mapping with a 'mappings' list")
        unknown = set(document) - {"mappings", "defaults"}
        if unknown:
            raise MappingError(f"{source}: unknown top-level key {sorted(map(str, unknown))[0]!r}")
        defaults = document.get("defaults") or {}
        if not isinstance(defaults, MappingABC) or set(defaults) - _DEFAULT_KEYS:
            raise MappingError(f"{source}: 'defaults' has an unknown key or is not a mapping")
        default_match_type = _choice(
            defaults.get("match_type"), ("glob", "regex"), "glob", source, "defaults: match_type"
        )
        entries = document.get("mappings")
        entries = [] if entries is None else entries
        if not isinstance(entries, list):
            raise MappingError(f"{source}: 'mappings' must be a list of rules")
        rules = [
            _rule(index, entry, default_match_type, source) for index, entry in enumerate(entries)
        ]
        return cls(rules, source)

    def map(self, name: str, stat_type: str) -> Mapped | None:
        """The first rule matching ``name`` for this statsd type, applied; None if none."""
        metric_type = METRIC_TYPES.get(stat_type, "")
        components = name.split(".")
        for rule in self._globs_by_length.get(len(components), ()):
            if rule.match_metric_type and rule.match_metric_type != metric_type:
                continue
            captures: list[str] = []
            for pattern, component in zip(rule.components, components, strict=True):
                if pattern is None:
                    captures.append(component)
                elif pattern != component:
                    break
            else:
                labels = {key: _fill(parts, captures) for key, parts in rule.label_parts.items()}
                return Mapped(rule, escape_metric_name(_fill(rule.name_parts, captures)), labels)
        for rule, regex in self._regexes:
            found = regex.search(name)
            if found is None:
                continue
            if rule.match_metric_type and rule.match_metric_type != metric_type:
                continue
            labels = {key: _expand(value, found) for key, value in rule.labels.items()}
            return Mapped(rule, escape_metric_name(_expand(rule.name, found)), labels)
        return None


def _expand(template: str, found: re.Match[str]) -> str:
    """Go's ``Regexp.ExpandString``: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``."""

    def replace(reference: re.Match[str]) -> str:
        if reference.group(3):
            return "$"
        key = reference.group(1) if reference.group(1) is not None else reference.group(2)
        try:
            value = found.group(int(key)) if key.isdigit() else found.group(key)
        except IndexError:
            return ""
        return value or ""

    return _REGEX_REFERENCE.sub(replace, template)


def _choice(value: object, allowed: tuple[str, ...], default: str, source: str, what: str) -> str:
    if value is None or value == "":
        return default
    if value not in allowed:
        raise MappingError(f"{source}: {what}: {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _rule(index: int, entry: object, default_match_type: str, source: str) -> Rule:
    where = f"{source}: rule {index + 1}"
    if not isinstance(entry, MappingABC):
        raise MappingError(f"{where}: expected a mapping with 'match' and 'name'")
    match = entry.get("match")
    if isinstance(match, str):
        where = f"{where} (match {match!r})"
    unknown = set(entry) - _RULE_KEYS
    if unknown:
        raise MappingError(f"{where}: unknown key {sorted(map(str, unknown))[0]!r}")
    if not isinstance(match, str) or not match:
        raise MappingError(f"{where}: 'match' must be a non-empty string")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise MappingError(f"{where}: metric mapping didn't set a metric name")
    if not _NAME.match(name):
        raise MappingError(f"{where}: metric name {name!r} is not a valid Prometheus name")
    labels = _labels(entry.get("labels") or {}, where)
    scale = entry.get("scale")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))):
        raise MappingError(f"{where}: 'scale' must be a number")
    help_text = entry.get("help") or ""
    if not isinstance(help_text, str):
        raise MappingError(f"{where}: 'help' must be a string")
    rule = Rule(
        index=index,
        match=match,
        name=name,
        labels=dict(labels),
        match_type=_choice(
            entry.get("match_type"), ("glob", "regex"), default_match_type, where, "match_type"
        ),
        action=_choice(entry.get("action"), ("map", "drop"), "map", where, "action"),
        match_metric_type=_choice(
            entry.get("match_metric_type"),
            ("counter", "gauge", "observer"),
            "",
            where,
            "match_metric_type",
        ),
        honor_labels=bool(entry.get("honor_labels", False)),
        help=help_text,
        scale=None if scale is None else float(scale),
    )
    _compile(rule, where)
    return rule


def _labels(labels: object, where: str) -> dict[str, str]:
    """A rule's ``labels``, checked: valid Prometheus label names, string values."""
    if not isinstance(labels, MappingABC):
        raise MappingError(f"{where}: 'labels' must be a mapping of label name to value")
    for key, value in labels.items():
        if not isinstance(key, str) or not _LABEL_NAME.match(key):
            raise MappingError(f"{where}: invalid label name {key!r}")
        if not isinstance(value, str):
            raise MappingError(f"{where}: label {key!r} must be a string (quote it)")
    return dict(labels)


def _compile(rule: Rule, where: str) -> None:
    """Prepare ``rule``'s matcher: glob components and templates, or a compiled regex."""
    match, name = rule.match, rule.name
    if rule.match_type == "glob":
        if not _GLOB_MATCH.match(match):
            raise MappingError(f"{where}: invalid glob (components of [A-Za-z0-9_-] or '*')")
        rule.components = tuple(None if part == "*" else part for part in match.split("."))
        captures = rule.components.count(None)
        rule.name_parts = _glob_template(name, captures)
        rule.label_parts = {
            key: _glob_template(value, captures) for key, value in rule.labels.items()
        }
    else:
        try:
            rule.regex = re.compile(match)
        except re.error as error:
            raise MappingError(f"{where}: invalid regex: {error}") from None
