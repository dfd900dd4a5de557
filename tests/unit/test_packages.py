"""Which imported names count, and which distribution provides them (no processes needed)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from popularity_contest.inprocess import classify as packages
from popularity_contest.inprocess.runtime import get_used_libraries, get_used_packages
from tests.envkit import add_dist


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Zope.Interface", "zope-interface"),
        ("ruamel.yaml", "ruamel-yaml"),
        ("python_dateutil", "python-dateutil"),
        ("a__b--c..d", "a-b-c-d"),
    ],
)
def test_pep503_normalisation(name: str, expected: str) -> None:
    assert packages.normalize(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("numpy.core.multiarray", "numpy"),
        ("PIL.Image", "PIL"),
        ("json", None),
        ("os.path", None),
        ("_socket", None),
        ("__main__", None),
        ("_distutils_hack", None),
        ("über", None),
        ("a b", None),
        (42, None),
        ("", None),
    ],
)
def test_top_level(name: object, expected: str | None) -> None:
    assert packages.top_level(name) == expected


def _module(
    name: str, origin: str | None, package: bool = False, locations: list[str] | None = None
) -> types.ModuleType:
    module = types.ModuleType(name)
    spec = types.SimpleNamespace(
        name=name,
        origin=origin,
        submodule_search_locations=locations
        if locations is not None
        else ([] if package else None),
    )
    module.__spec__ = spec  # type: ignore[assignment]
    return module


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site-packages"
    add_dist(site, "numpy", {"numpy/__init__.py": ""})
    add_dist(site, "python-dateutil", {"dateutil/__init__.py": ""})
    add_dist(site, "Pillow", {"PIL/__init__.py": ""})
    add_dist(site, "six", {"six.py": ""})
    add_dist(site, "ujson", {"ujson.cpython-311-x86_64-linux-gnu.so": ""})
    add_dist(site, "google-auth", {"google/auth/__init__.py": ""})
    add_dist(site, "mine", {"mine/__init__.py": ""}, direct_url='{"dir_info": {"editable": true}}')
    return site


def _modules(site: Path) -> dict[str, object]:
    s = str(site)
    return {
        "numpy": _module("numpy", f"{s}/numpy/__init__.py", package=True),
        "dateutil": _module("dateutil", f"{s}/dateutil/__init__.py", package=True),
        "PIL": _module("PIL", f"{s}/PIL/__init__.py", package=True),
        "six": _module("six", f"{s}/six.py"),
        "ujson": _module("ujson", f"{s}/ujson.cpython-311-x86_64-linux-gnu.so"),
        "google": _module("google", None, locations=[f"{s}/google"]),
        "mine": _module("mine", f"{s}/mine/__init__.py", package=True),
        "alias": _module("numpy", f"{s}/numpy/__init__.py", package=True),
        "elsewhere": _module("elsewhere", "/home/user/elsewhere.py"),
        "stdlibish": _module("stdlibish", "built-in"),
    }


def test_classification_finds_owners_however_they_are_named(site: Path) -> None:
    classifier = packages.Classifier(sites={str(site): packages.SITE})
    modules = _modules(site)
    owners = {}
    for name in modules:
        found = classifier.classify(name, modules)
        owners[name] = None if found is None else found[1].name
    assert owners == {
        "numpy": "numpy",
        "dateutil": "python-dateutil",
        "PIL": "pillow",
        "six": "six",
        "ujson": "ujson",
        "google": "google-auth",
        "mine": None,  # editable: a user's own project
        "alias": None,  # sys.modules["alias"] is numpy: the name must match the place
        "elsewhere": None,
        "stdlibish": None,
    }


def test_local_installs_count_when_asked(site: Path) -> None:
    classifier = packages.Classifier(count_local=True, sites={str(site): packages.USER})
    assert classifier.classify("mine", _modules(site)) is not None
    found = classifier.classify("six", _modules(site))
    assert found is not None
    assert found[0] == packages.USER


def test_modules_that_explode_or_lie_are_skipped_without_running_their_hooks(site: Path) -> None:
    touched: list[str] = []

    class Exploding(types.ModuleType):
        def __getattribute__(self, name: str) -> object:
            touched.append(name)
            raise RuntimeError(name)

        def __getattr__(self, name: str) -> object:
            touched.append(name)
            raise RuntimeError(name)

    classifier = packages.Classifier(sites={str(site): packages.SITE})
    liar = types.ModuleType("liar")
    liar.__spec__ = "not a spec"  # type: ignore[assignment]
    liar.__file__ = 12  # type: ignore[assignment]
    assert classifier.classify("boom", {"boom": Exploding("boom")}) is None
    assert touched == []  # only the module's own __dict__ was read
    assert classifier.classify("liar", {"liar": liar}) is None
    assert classifier.classify("odd", {"odd": 42}) is None


def test_used_packages_from_two_module_sets() -> None:
    import statsd  # an installed distribution of the test environment

    before = {"sys", "os"}
    after = before | {"statsd", "statsd.client", "json", "_private", "__main__"}
    assert get_used_packages(before, after, modules={"statsd": statsd}) == {"statsd": "site"}
    assert get_used_libraries(before, after, modules={"statsd": statsd}) == {"statsd"}


def test_a_module_that_sets_search_locations_is_still_a_module(site: Path) -> None:
    # six.py sets __spec__.submodule_search_locations = [] for its lazy importer.
    six = _module("six", f"{site}/six.py", locations=[])
    classifier = packages.Classifier(sites={str(site): packages.SITE})
    found = classifier.classify("six", {"six": six})
    assert found is not None
    assert found[1].name == "six"


@pytest.mark.parametrize(
    ("entry", "module", "owner"),
    [
        ("PyYAML-6.0.1.dist-info", "yaml", "pyyaml"),
        ("typing_extensions-4.12.dist-info", "typing_extensions", "typing-extensions"),
        ("Pygments-2.18.0.dist-info", "pygments", "pygments"),
        ("six_extra-1.0.dist-info", "six", None),  # a longer name is not `six`
        ("numpy-1.24.2.egg-info", "numpy", "numpy"),
    ],
)
def test_metadata_directory_names(
    tmp_path: Path, entry: str, module: str, owner: str | None
) -> None:
    info = tmp_path / entry
    info.mkdir()
    (info / "RECORD").write_text(f"{module}/__init__.py,,\n" if owner else "other/x.py,,\n")
    found = packages.SiteDirectory(str(tmp_path), packages.SITE).owner(module)
    assert (found.name if found else None) == owner


def test_a_site_directory_reached_through_a_symbolic_link(site: Path, tmp_path: Path) -> None:
    link = tmp_path / "linked-site"
    link.symlink_to(site)
    classifier = packages.Classifier(sites={str(link): packages.SITE})
    six = _module("six", f"{site}/six.py")  # the module's path is the real one
    found = classifier.classify("six", {"six": six})
    assert found is not None
    assert found[1].name == "six"


def test_the_start_up_shortcut_agrees_with_classify_on_every_module_here() -> None:
    # The reporter decides common packages without loading classify (issue 14's cost);
    # whenever it answers, classify must give the same answer.
    from popularity_contest import inprocess

    classifier = packages.Classifier()
    answered = 0
    for name, module in list(sys.modules.items()):
        if "." in name:
            continue
        quick = inprocess._quick_kind(name, module)
        if quick is not None:
            answered += 1
            found = classifier.classify(name)
            assert found is not None, name
            assert found[0] == quick, name
    assert answered >= 5  # pytest, packaging, hypothesis, statsd, yaml...: it is used
