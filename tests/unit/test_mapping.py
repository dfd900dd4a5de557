"""statsd_exporter mapping rules: the shipped file, glob and regex semantics, load errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from popularity_contest import names
from popularity_contest.collector.mapping import Mapper, MappingError, escape_metric_name
from popularity_contest.inprocess import lines as wire

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_MAPPING = ROOT / "deploy" / "statsd-mapping.yaml"
IMPORTED = "python_popcon_imported_package_total"
USER_IMPORTED = "python_popcon_user_imported_package_total"
PROCESSES = "python_popcon_processes_reported_total"
LIBRARY = "python_popcon_library_used_total"
DEFAULT_PREFIX = "python_popcon.imported_package"
HUB_PREFIX = "python_popcon.hub.hub-a.imported_package"


@pytest.fixture(scope="module")
def shipped() -> Mapper:
    return Mapper.load(DEPLOY_MAPPING)


def test_packaged_rules_are_the_deploy_file() -> None:
    packaged = Mapper.load()
    deployed = Mapper.load(DEPLOY_MAPPING)
    assert [(r.match, r.name, r.labels) for r in packaged.rules] == [
        (r.match, r.name, r.labels) for r in deployed.rules
    ]
    assert packaged.source.startswith("packaged")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (f"{DEFAULT_PREFIX}.numpy", (IMPORTED, {"namespace": "", "package": "numpy"})),
        (f"{HUB_PREFIX}.PIL", (IMPORTED, {"namespace": "hub-a", "package": "PIL"})),
        (
            wire.sibling(DEFAULT_PREFIX, names.LEAF_USER_IMPORTED_PACKAGE) + ".yaml",
            (USER_IMPORTED, {"namespace": "", "package": "yaml"}),
        ),
        (
            wire.sibling(HUB_PREFIX, names.LEAF_USER_IMPORTED_PACKAGE) + ".yaml",
            (USER_IMPORTED, {"namespace": "hub-a", "package": "yaml"}),
        ),
        (
            wire.sibling(DEFAULT_PREFIX, names.LEAF_PROCESSES_REPORTED),
            (PROCESSES, {"namespace": ""}),
        ),
        (
            wire.sibling(HUB_PREFIX, names.LEAF_PROCESSES_REPORTED),
            (PROCESSES, {"namespace": "hub-a"}),
        ),
        (
            wire.sibling(HUB_PREFIX, names.LEAF_LIBRARY_USED) + ".scikit-learn",
            (LIBRARY, {"namespace": "hub-a", "distribution": "scikit-learn"}),
        ),
        # Legacy 0.4.x names.
        (
            "python_popcon.library_used.zope-interface",
            (LIBRARY, {"namespace": "", "distribution": "zope-interface"}),
        ),
        ("python_popcon.reports", (PROCESSES, {"namespace": ""})),
        ("python_popcon.namespace.ns.reports", (PROCESSES, {"namespace": "ns"})),
        (
            "python_popcon.namespace.ns.library_used.numpy",
            (LIBRARY, {"namespace": "ns", "distribution": "numpy"}),
        ),
    ],
)
def test_wire_contract_names_map_to_the_documented_series(
    shipped: Mapper, name: str, expected: tuple[str, dict[str, str]]
) -> None:
    mapped = shipped.map(name, "c")
    assert mapped is not None
    assert (mapped.name, mapped.labels) == expected


@pytest.mark.parametrize(
    "name",
    [
        "python_popcon.imported_package",  # no package component
        "python_popcon.imported_package.numpy.linalg",  # `*` is one component, not two
        "python_popcon.hub.a.b.imported_package.numpy",
        "python_popcon.other.numpy",
        "something.else",
    ],
)
def test_names_outside_the_rules_are_unmapped(shipped: Mapper, name: str) -> None:
    assert shipped.map(name, "c") is None


def mapper(yaml_text: str) -> Mapper:
    return Mapper.from_yaml(yaml_text, "test.yaml")


def test_first_matching_rule_wins() -> None:
    rules = mapper(
        """
mappings:
  - match: "a.*.c"
    name: "first"
  - match: "a.b.c"
    name: "second"
  - match: "a.b.*"
    name: "third"
"""
    )
    assert rules.map("a.b.c", "c").name == "first"  # type: ignore[union-attr]
    assert rules.map("a.b.d", "c").name == "third"  # type: ignore[union-attr]


def test_captures_fill_names_and_labels_and_missing_ones_are_empty() -> None:
    rules = mapper(
        """
mappings:
  - match: "x.*.*"
    name: "x_${2}_$1"
    labels:
      first: "$1"
      both: "$1-$2"
      missing: "$3"
      literal: "fixed"
"""
    )
    mapped = rules.map("x.one.two", "c")
    assert mapped is not None
    assert mapped.name == "x_two_one"
    assert mapped.labels == {"first": "one", "both": "one-two", "missing": "", "literal": "fixed"}


def test_mapped_names_are_escaped_like_statsd_exporter() -> None:
    rules = mapper('mappings:\n  - match: "x.*"\n    name: "m_$1"\n')
    assert rules.map("x.a-b", "c").name == "m_a_b"  # type: ignore[union-attr]
    assert escape_metric_name("9lives") == "_9lives"


def test_match_metric_type_and_drop_action() -> None:
    rules = mapper(
        """
mappings:
  - match: "x.*"
    match_metric_type: gauge
    name: "gauges"
  - match: "x.secret"
    action: drop
    name: "dropped"
  - match: "x.*"
    name: "counters"
"""
    )
    assert rules.map("x.a", "g").name == "gauges"  # type: ignore[union-attr]
    assert rules.map("x.a", "c").name == "counters"  # type: ignore[union-attr]
    assert rules.map("x.secret", "c").drop  # type: ignore[union-attr]


def test_regex_rules_come_after_glob_rules_and_expand_groups() -> None:
    rules = mapper(
        r"""
mappings:
  - match: 'x\.(\w+)\.(?P<rest>.*)'
    match_type: regex
    name: "re_$1"
    labels:
      rest: "${rest}"
      cost: "$$5"
  - match: "x.glob.*"
    name: "glob"
"""
    )
    assert rules.map("x.glob.a", "c").name == "glob"  # type: ignore[union-attr]
    mapped = rules.map("x.abc.d.e", "c")
    assert mapped is not None
    assert (mapped.name, mapped.labels) == ("re_abc", {"rest": "d.e", "cost": "$5"})


def test_defaults_match_type_applies_to_rules() -> None:
    rules = mapper('defaults:\n  match_type: regex\nmappings:\n  - match: "^y"\n    name: "y"\n')
    assert rules.map("yes.it.is", "c").name == "y"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mappings: [", "not valid YAML at line"),
        ("- a\n- b\n", "expected a mapping"),
        ("mapping: []\n", "unknown top-level key 'mapping'"),
        (
            'mappings:\n  - match: "a.*"\n',
            "rule 1 (match 'a.*'): metric mapping didn't set a metric name",
        ),
        (
            'mappings:\n  - match: "a"\n    name: "a"\n  - match: "a.**"\n    name: "b"\n',
            "rule 2 (match 'a.**'): invalid glob",
        ),
        (
            'mappings:\n  - match: "a.*"\n    name: "bad-name"\n',
            "rule 1 (match 'a.*'): metric name 'bad-name'",
        ),
        (
            'mappings:\n  - match: "a.*"\n    name: "n"\n    labels:\n      "a-b": "x"\n',
            "invalid label name 'a-b'",
        ),
        (
            'mappings:\n  - match: "a.*"\n    name: "n"\n    labels:\n      ok: 3\n',
            "label 'ok' must be a string",
        ),
        ('mappings:\n  - match: "a.*"\n    name: "n"\n    nmae: "x"\n', "unknown key 'nmae'"),
        (
            'mappings:\n  - match: "a.*"\n    name: "n"\n    action: keep\n',
            "action: 'keep' is not one of map, drop",
        ),
        (
            'mappings:\n  - match: "a("\n    match_type: regex\n    name: "n"\n',
            "rule 1 (match 'a('): invalid regex",
        ),
        (
            'mappings:\n  - match: "a.*"\n    name: "n"\n    match_type: fuzzy\n',
            "match_type: 'fuzzy'",
        ),
        ("mappings: {}\n", "'mappings' must be a list"),
    ],
)
def test_load_errors_name_the_file_and_the_rule(text: str, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        mapper(text)
    assert str(caught.value).startswith("test.yaml")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_file_is_a_mapping_error(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="cannot read it"):
        Mapper.load(tmp_path / "absent.yaml")


def test_empty_file_has_no_rules() -> None:
    assert mapper("").rules == []
