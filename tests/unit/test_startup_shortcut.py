"""The start-up module decides common names without loading ``classify`` (issue 14's cost).

Whenever the shortcut answers, ``classify`` must give the same answer; where it is unsure
it answers None and ``classify`` decides. Each layout below is hand-made in a temporary
site directory and judged by both.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from popularity_contest import inprocess
from popularity_contest.inprocess import classify
from tests.envkit import add_dist


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.setattr(inprocess, "_quick_sites", {str(site): classify.SITE})
    yield site
    inprocess._texts.pop(str(site), None)


def _package(site: Path, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    origin = site / name / "__init__.py"
    origin.parent.mkdir(exist_ok=True)
    origin.touch()
    module.__spec__ = types.SimpleNamespace(  # type: ignore[assignment]
        name=name, origin=str(origin), submodule_search_locations=[str(origin.parent)]
    )
    module.__file__ = str(origin)
    return module


def _both(site: Path, name: str, module: types.ModuleType) -> tuple[str | None, str | None]:
    """(the shortcut's answer, classify's kind)."""
    quick = inprocess._quick_kind(name, module)
    found = classify.Classifier(sites={str(site): classify.SITE}).classify(name, {name: module})
    return quick, (found[0] if found else None)


def test_a_distribution_listing_the_package_in_top_level_txt(site: Path) -> None:
    add_dist(site, "python-dateutil", {}, top_level="dateutil\n")
    assert _both(site, "dateutil", _package(site, "dateutil")) == ("site", "site")


def test_a_distribution_listing_the_package_only_in_record(site: Path) -> None:
    # Wheels built by current tools (python-dateutil 2.9 on PyPI) have no top_level.txt.
    add_dist(site, "python-dateutil", {"dateutil/tz.py": ""})
    assert _both(site, "dateutil", _package(site, "dateutil")) == ("site", "site")


def test_a_distribution_named_like_the_package_decides_first(site: Path) -> None:
    add_dist(site, "Six", {"six/__init__.py": ""})
    add_dist(site, "six-extras", {}, top_level="six\n")
    assert _both(site, "six", _package(site, "six")) == ("site", "site")


@pytest.mark.parametrize(
    "layout",
    [
        "two candidates",  # classify's order decides
        "top_level.txt names others",  # classify then reads every file list
        "installed from a local directory",  # direct_url.json: maybe private
        "an egg-info candidate",  # named differently
        "a candidate whose suffix is in upper case",  # not metadata for classify
    ],
)
def test_unsure_layouts_are_left_to_classify(site: Path, layout: str) -> None:
    if layout == "two candidates":
        add_dist(site, "python-dateutil", {}, top_level="dateutil\n")
        add_dist(site, "types-dateutil", {}, top_level="dateutil-stubs\n")
    elif layout == "top_level.txt names others":
        add_dist(site, "python-dateutil", {"dateutil/tz.py": ""}, top_level="other\n")
    elif layout == "installed from a local directory":
        add_dist(site, "python-dateutil", {}, top_level="dateutil\n", direct_url="{}")
    elif layout == "an egg-info candidate":
        (site / "python_dateutil-1.0-py3.11.egg-info").mkdir()
        (site / "python_dateutil-1.0-py3.11.egg-info" / "top_level.txt").write_text("dateutil\n")
    else:
        info = site / "python_dateutil-1.0.DIST-INFO"
        info.mkdir()
        (info / "top_level.txt").write_text("dateutil\n")
    module = _package(site, "dateutil")
    assert inprocess._quick_kind("dateutil", module) is None


def test_the_listing_text_follows_the_directory(site: Path) -> None:
    module = _package(site, "dateutil")
    assert inprocess._quick_kind("dateutil", module) is None  # nobody provides it yet
    add_dist(site, "python-dateutil", {}, top_level="dateutil\n")
    assert inprocess._quick_kind("dateutil", module) == "site"


@pytest.mark.parametrize(
    "name", ["json", "_socket", "__main__", "_sysconfigdata__linux", "über", "a b", "sys", ""]
)
def test_names_classify_refuses_are_refused_without_it(name: str) -> None:
    assert inprocess._never_counts(name)
    assert classify.top_level(name) != name


@pytest.mark.parametrize("name", ["numpy", "PIL", "dateutil", "google"])
def test_names_classify_may_count_go_on(name: str) -> None:
    assert not inprocess._never_counts(name)
    assert classify.top_level(name) == name


def test_a_module_with_no_place_never_counts_and_classify_agrees(site: Path) -> None:
    # Cython extensions create `cython_runtime` straight in sys.modules: no file, no spec.
    runtime = types.ModuleType("cython_runtime")
    assert inprocess._placeless(runtime)
    assert (
        classify.Classifier(sites={str(site): classify.SITE}).classify(
            "cython_runtime", {"cython_runtime": runtime}
        )
        is None
    )
    # Anything with a place, or an odd object, goes on to the usual rules.
    assert not inprocess._placeless(_package(site, "numpy"))
    namespace = types.ModuleType("google")
    namespace.__spec__ = types.SimpleNamespace(  # type: ignore[assignment]
        name="google", origin=None, submodule_search_locations=[str(site / "google")]
    )
    assert not inprocess._placeless(namespace)
    assert not inprocess._placeless(object.__new__(type("Odd", (), {"__slots__": ()})))


def test_top_level_names_skip_dotted_odd_and_subclassed_keys() -> None:
    class Sneaky(str):
        def __hash__(self) -> int:
            raise AssertionError("a key's own hook ran")

    keys: list[object] = ["numpy", "numpy.core", "über", 42, ("t",), "a-b", "pandas"]
    assert inprocess._top_level_names(keys) == {"numpy", "über", "pandas"}
    assert inprocess._top_level_names(["six", Sneaky("evil")]) == {"six"}
