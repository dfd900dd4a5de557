"""``report``'s direct counts and ``--by distribution``: ranking, masking, grouping, outputs."""

from __future__ import annotations

import csv
import functools
import io
import json

import pytest

from popularity_contest.answers import distributions
from popularity_contest.answers.environment import Installed
from popularity_contest.answers.promql import PROMQL, counted, promql
from popularity_contest.answers.ranking import Entry, rank, top_packages
from popularity_contest.answers.window import Window
from popularity_contest.commands.report import render
from popularity_contest.names import DIRECTLY_IMPORTED_PACKAGE, LIBRARY_USED

PACKAGES = {
    ("hub-a", "numpy"): 4.0,
    ("hub-a", "pandas"): 3.0,
    ("hub-a", "yaml"): 2.0,
    ("hub-b", "numpy"): 2.0,
    ("hub-b", "sklearn"): 2.0,
}
DIRECT = {
    ("hub-a", "numpy"): 1.0,
    ("hub-a", "pandas"): 3.0,
    ("hub-b", "numpy"): 1.0,
    ("hub-b", "sklearn"): 2.0,
}
PROCESSES = {"hub-a": 4.0, "hub-b": 2.0}
SPAN = Window(0, 86400)


def test_rows_carry_direct_counts_summed_over_hubs() -> None:
    rows = top_packages(PACKAGES, PROCESSES, direct=DIRECT)
    assert [(r.package, r.count, r.direct) for r in rows] == [
        ("numpy", 6.0, 2.0),
        ("pandas", 3.0, 3.0),
        ("sklearn", 2.0, 2.0),
        ("yaml", 2.0, 0.0),
    ]


def test_rank_by_direct_breaks_ties_by_processes_then_name() -> None:
    rows = top_packages(PACKAGES, PROCESSES, direct=DIRECT, by="direct")
    assert [(r.package, r.direct) for r in rows] == [
        ("pandas", 3.0),
        ("numpy", 2.0),  # 6 processes: before sklearn's 2
        ("sklearn", 2.0),
        ("yaml", 0.0),
    ]
    per_hub = top_packages(PACKAGES, PROCESSES, direct=DIRECT, by="direct", by_namespace=True)
    assert [(r.namespace, r.package) for r in per_hub] == [
        ("hub-a", "pandas"),
        ("hub-a", "numpy"),
        ("hub-a", "yaml"),
        ("hub-b", "sklearn"),
        ("hub-b", "numpy"),
    ]


def test_rank_refuses_an_unknown_order() -> None:
    with pytest.raises(ValueError, match="cannot rank by"):
        top_packages(PACKAGES, PROCESSES, by="share")


def test_threshold_shows_rows_by_processes_and_masks_direct_below_it() -> None:
    rows = top_packages(PACKAGES, PROCESSES, direct=DIRECT, min_processes=3)
    # yaml (2) and sklearn (2) are hidden; numpy's direct 2 and pandas' 3 against K=3.
    assert [(r.package, r.count, r.direct) for r in rows] == [
        ("numpy", 6.0, None),
        ("pandas", 3.0, 3.0),
    ]
    # Direct 0 is masked too: 0 and 1 must look alike below the threshold.
    zero = top_packages({("", "a"): 5.0}, {"": 5.0}, direct={}, min_processes=2)
    assert zero[0].direct is None
    # Without a threshold (or K = 1) nothing is masked.
    assert top_packages(PACKAGES, PROCESSES, direct=DIRECT, min_processes=1)[0].direct == 2.0


def test_masked_rows_rank_after_the_others_and_never_by_their_hidden_value() -> None:
    packages = {("", "a"): 9.0, ("", "b"): 3.0, ("", "c"): 5.0, ("", "d"): 4.0}
    direct = {("", "a"): 1.0, ("", "b"): 3.0, ("", "c"): 0.0, ("", "d"): 2.0}
    rows = top_packages(packages, {"": 10.0}, direct=direct, min_processes=3, by="direct")
    # b shown (3 >= 3); a, c, d masked: ordered by processes (9, 5, 4), whatever their
    # direct counts (1, 0, 2) are.
    assert [(r.package, r.direct) for r in rows] == [
        ("b", 3.0),
        ("a", None),
        ("c", None),
        ("d", None),
    ]


def test_render_table_json_and_csv_carry_both_counts() -> None:
    rows = top_packages(PACKAGES, PROCESSES, direct=DIRECT, min_processes=3)
    text = render(
        rows, "table", by_namespace=False, span=SPAN, processes=PROCESSES, min_processes=3
    )
    lines = text.splitlines()
    assert lines[1].split() == ["package", "processes", "direct", "share"]
    assert lines[3].split() == ["numpy", "6", "<3", "100.0%"]
    assert lines[4].split() == ["pandas", "3", "3", "50.0%"]
    assert lines[-1].startswith("<3: direct count below the privacy threshold")
    document = json.loads(
        render(
            rows,
            "json",
            by_namespace=False,
            span=SPAN,
            processes=PROCESSES,
            min_processes=3,
            ranked_by="direct",
        )
    )
    assert document["rank"] == "direct"
    assert document["rows"] == [
        {"package": "numpy", "count": 6, "direct": None, "share": 1.0},
        {"package": "pandas", "count": 3, "direct": 3, "share": 0.5},
    ]
    table = render(rows, "csv", by_namespace=False, span=SPAN, processes=PROCESSES)
    parsed = list(csv.DictReader(io.StringIO(table)))
    assert [(r["package"], r["count"], r["direct"]) for r in parsed] == [
        ("numpy", "6", ""),
        ("pandas", "3", "3"),
    ]


def test_direct_query_is_the_package_query_on_the_direct_counter() -> None:
    assert PROMQL["direct"] == (
        f"sum by (namespace, package) ({counted(DIRECTLY_IMPORTED_PACKAGE, '$__range')})"
    )
    expression = promql("direct", Window(0, 60), "hub-a")
    assert DIRECTLY_IMPORTED_PACKAGE + '{namespace=~"hub\\\\-a"}' in expression
    assert "$" not in expression


def test_distributions_query_selects_the_hub_like_the_others() -> None:
    # It once kept Grafana's "$hub" in the selector, which matches no series at all.
    expression = promql("distributions", Window(0, 60), None)
    assert LIBRARY_USED + '{namespace=~".*"}' in expression
    assert "$" not in expression


# --- by distribution ------------------------------------------------------------------------
def dist(name: str, *packages: str) -> Installed:
    return Installed(distribution=name, version="1.0", packages=list(packages))


INSTALLED = [
    dist("numpy", "numpy"),
    dist("scikit-learn", "sklearn"),
    dist("pillow", "PIL"),
    dist("pyyaml", "yaml", "_yaml"),
    dist("protobuf", "google"),  # a namespace package, provided by two distributions
    dist("google-auth", "google"),
    dist("gamma", "gamma"),  # never imported: no row
]
NAMES = {
    ("hub-a", "numpy"): 5.0,
    ("hub-a", "sklearn"): 3.0,
    ("hub-a", "PIL"): 2.0,
    ("hub-a", "yaml"): 2.0,
    ("hub-a", "_yaml"): 1.0,
    ("hub-a", "google"): 1.0,
    ("hub-a", "mylocal"): 1.0,  # no distribution provides it
    ("hub-b", "numpy"): 1.0,
    ("hub-b", "yaml"): 1.0,
    ("hub-b", "_yaml"): 1.0,
}
NAMES_DIRECT = {
    ("hub-a", "numpy"): 2.0,
    ("hub-a", "sklearn"): 3.0,
    ("hub-a", "yaml"): 1.0,
    ("hub-a", "_yaml"): 1.0,
    ("hub-b", "numpy"): 1.0,
}


def test_group_names_by_the_distribution_providing_them() -> None:
    entries = distributions.group(INSTALLED, NAMES, NAMES_DIRECT)
    assert entries[("hub-a", "scikit-learn")] == Entry(3.0, 3.0, packages=("sklearn",))
    assert entries[("hub-a", "pillow")] == Entry(2.0, 0.0, packages=("PIL",))
    # Two import names: the larger count is a lower bound, for direct too.
    assert entries[("hub-a", "pyyaml")] == Entry(
        2.0, 1.0, exact=False, direct_exact=False, packages=("yaml", "_yaml")
    )
    # Left as they are: provided by none, or by several.
    assert entries[("hub-a", "mylocal")] == Entry(1.0, 0.0, packages=("mylocal",), provided=False)
    assert entries[("hub-a", "google")] == Entry(1.0, 0.0, packages=("google",), provided=False)
    assert ("hub-a", "protobuf") not in entries
    assert ("hub-a", "gamma") not in entries
    assert distributions.unattributed(entries) == ["google", "mylocal"]


def test_library_used_makes_a_distributions_count_exact() -> None:
    used = {("hub-a", "pyyaml"): 3.0, ("hub-a", "protobuf"): 1.0, ("hub-b", "pyyaml"): 1.0}
    entries = distributions.group(INSTALLED, NAMES, NAMES_DIRECT, used)
    assert entries[("hub-a", "pyyaml")].count == 3.0
    assert entries[("hub-a", "pyyaml")].exact is True
    assert entries[("hub-a", "pyyaml")].direct_exact is False  # no direct counter per distribution
    assert entries[("hub-b", "pyyaml")] == Entry(1.0, 0.0, packages=("yaml", "_yaml"))
    # Its only name is shared, but library_used names it.
    assert entries[("hub-a", "protobuf")] == Entry(1.0, 0.0, packages=("google",))


def test_distribution_rows_sum_hubs_and_stay_lower_bounds() -> None:
    entries = distributions.group(INSTALLED, NAMES, NAMES_DIRECT)
    rows = rank(entries, {"hub-a": 6.0, "hub-b": 2.0})
    assert [(r.package, r.count, r.exact, r.direct, r.provided) for r in rows] == [
        ("numpy", 6.0, True, 3.0, True),
        ("scikit-learn", 3.0, True, 3.0, True),  # ties: the larger direct count first
        ("pyyaml", 3.0, False, 1.0, True),  # 2 + 1, each hub's a lower bound
        ("pillow", 2.0, True, 0.0, True),
        ("google", 1.0, True, 0.0, False),
        ("mylocal", 1.0, True, 0.0, False),
    ]
    by_direct = rank(entries, {"hub-a": 6.0, "hub-b": 2.0}, by="direct", limit=2)
    assert [r.package for r in by_direct] == ["numpy", "scikit-learn"]


def test_render_distribution_rows() -> None:
    entries = distributions.group(INSTALLED, NAMES, NAMES_DIRECT)
    processes = {"hub-a": 6.0, "hub-b": 2.0}
    rows = rank(entries, processes)
    show = functools.partial(
        render,
        rows,
        by_namespace=False,
        span=SPAN,
        processes=processes,
        by_distribution=True,
        python="/env/bin/python",
        unattributed=distributions.unattributed(entries),
    )
    text = show("table")
    lines = text.splitlines()
    assert lines[1].split() == ["distribution", "processes", "direct", "share", "packages"]
    assert lines[3].split() == ["numpy", "6", "3", "75.0%", "numpy"]
    assert lines[4].split() == ["scikit-learn", "3", "3", "37.5%", "sklearn"]
    assert lines[5].split() == ["pyyaml", ">=3", ">=1", "37.5%", "yaml", "_yaml"]
    assert lines[7].split() == ["google*", "1", "0", "12.5%", "-"]
    assert any(line.startswith(">=N: a lower bound") for line in lines)
    assert lines[-1].startswith("* an import name that no single distribution of /env/bin/python")
    document = json.loads(show("json"))
    assert document["by"] == ["distribution"]
    assert document["python"] == "/env/bin/python"
    assert document["unattributed"] == ["google", "mylocal"]
    assert document["rows"][2] == {
        "distribution": "pyyaml",
        "provided": True,
        "packages": ["yaml", "_yaml"],
        "count": 3,
        "direct": 1,
        "count_exact": False,
        "direct_exact": False,
        "share": 0.375,
    }
    parsed = list(csv.DictReader(io.StringIO(show("csv"))))
    assert parsed[2]["distribution"] == "pyyaml"
    assert parsed[2]["packages"] == "yaml _yaml"
    assert parsed[2]["count_exact"] == "False"
    assert parsed[4]["provided"] == "False"
