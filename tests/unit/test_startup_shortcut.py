"""The start-up module decides common names without loading ``classify`` (issue 14's cost).

Whenever the shortcut answers, ``classify`` must give the same answer; where it is unsure
it answers None and ``classify`` decides. Each layout below is hand-made in a temporary
site directory and judged by both.
"""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from popularity_contest import inprocess
from popularity_contest.inprocess import classify
from tests.envkit import Listener, add_dist

LOCAL_DIR = '{"url": "file:///home/u/thesis", "dir_info": {}}'


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
    # An object without a namespace classify reads is placed nowhere either.
    odd = object.__new__(type("Odd", (), {"__slots__": ()}))
    assert inprocess._placeless(odd)
    assert (
        classify.Classifier(sites={str(site): classify.SITE}).classify("odd", {"odd": odd}) is None
    )
    # Anything with a place goes on to the usual rules.
    assert not inprocess._placeless(_package(site, "numpy"))
    namespace = types.ModuleType("google")
    namespace.__spec__ = types.SimpleNamespace(  # type: ignore[assignment]
        name="google", origin=None, submodule_search_locations=[str(site / "google")]
    )
    assert not inprocess._placeless(namespace)


def test_top_level_names_skip_dotted_odd_and_subclassed_keys() -> None:
    class Sneaky(str):
        def __hash__(self) -> int:
            raise AssertionError("a key's own hook ran")

    keys: list[object] = ["numpy", "numpy.core", "über", 42, ("t",), "a-b", "pandas"]
    assert inprocess._top_level_names(keys) == {"numpy", "über", "pandas"}
    assert inprocess._top_level_names(["six", Sneaky("evil")]) == {"six"}


# --- Found by attacking the shortcut: each failed before its fix. -------------------------


def test_a_class_standing_in_sys_modules_is_judged_as_classify_judges_it(site: Path) -> None:
    # `sys.modules["six"] = SomeClass`: classify reads only a real `dict` namespace
    # (module_dict), so a class (a mappingproxy) is placed nowhere and never counts; the
    # shortcut reads the class's `__spec__` through the mappingproxy and answers "site".
    add_dist(site, "six", {"six/__init__.py": ""})
    real = _package(site, "six")
    stand_in = type("six", (), {"__spec__": real.__spec__, "__file__": real.__file__})
    quick, found = _both(site, "six", stand_in)  # type: ignore[arg-type]
    assert found is None
    assert quick is None


def test_an_object_whose_namespace_is_a_dict_subclass_runs_none_of_its_code(site: Path) -> None:
    # An object in sys.modules whose `__dict__` is a dict subclass: classify refuses it
    # without calling anything (type(namespace) is not dict); `_placeless` and `_site_of`
    # call the subclass's own `get` (user code run by the reporter) and the shortcut then
    # answers "site" where classify says None.
    add_dist(site, "six", {"six/__init__.py": ""})
    real = _package(site, "six")
    calls: list[object] = []

    class Namespace(dict[str, object]):
        def get(self, key: str, default: object = None) -> object:
            calls.append(key)
            return dict.get(self, key, default)

    class StandIn:
        pass

    stand_in = StandIn()
    stand_in.__dict__ = Namespace(__spec__=real.__spec__, __file__=real.__file__)
    inprocess._placeless(stand_in)
    quick, found = _both(site, "six", stand_in)  # type: ignore[arg-type]
    assert calls == []
    assert found is None
    assert quick is None


@pytest.fixture
def reporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[inprocess._Reporter, Listener]]:
    """An activation's state, as the observer finds it, sending to a listener of our own."""
    listener = Listener()
    monkeypatch.setenv(inprocess.COUNTED, "")  # emit writes it; restored afterwards
    config = inprocess.ReporterConfig(host="127.0.0.1", port=listener.port)
    state = inprocess._Reporter(config, starting_shell=False)
    monkeypatch.setattr(inprocess, "_state", state)
    yield state, listener
    state.close()
    listener.close()


def test_the_observer_never_hashes_or_indexes_a_str_subclass_name(
    reporter: tuple[inprocess._Reporter, Listener], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `__import__(Name("attackpkg"))` hands the str subclass to every meta path finder, and
    # the import system makes it a key of sys.modules. The observer hashes it (baseline,
    # decided, candidates), slices it (`top[:1]`), and settle/lines_for hash, compare and
    # index it (`_never_counts`: `name[0]`, `in _STANDARD`, `in sys.builtin_module_names`).
    state, _listener = reporter
    calls: list[str] = []
    armed = False

    class Name(str):
        __slots__ = ()

        def __hash__(self) -> int:
            if armed:
                calls.append("__hash__")
            return str.__hash__(self)

        def __eq__(self, other: object) -> bool:
            if armed:
                calls.append("__eq__")
            return str.__eq__(self, other)

        def __getitem__(self, index: object) -> str:
            if armed:
                calls.append("__getitem__")
            return str.__getitem__(self, index)  # type: ignore[index]

    name = Name("attackpkg")
    monkeypatch.setitem(sys.modules, name, types.ModuleType("attackpkg"))
    armed = True
    try:
        inprocess._observer.find_spec(name)  # the import of the subclass name
        inprocess._observer.find_spec("json")  # the next import settles the candidates
        state.sweep(wait=0.0)
    finally:
        armed = False
    assert calls == []


def test_a_module_that_enters_sys_modules_late_is_sent_at_the_next_top_level_import(
    site: Path, reporter: tuple[inprocess._Reporter, Listener], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A single-phase extension module (pybind11, PyO3, most hand-written C) runs its init,
    # which imports what it needs, before the import system puts it in sys.modules. Each of
    # those imports settles; the candidate is missing each time and after MISSING_CHECKS (2)
    # it waits in `late`, which every top-level import checks (submodule imports do not:
    # they are most imports, and the check is Python code). Sent at the next one, so a
    # process SIGKILLed later has already been counted.
    _state, listener = reporter
    add_dist(site, "lateext", {"lateext/__init__.py": ""})
    module = _package(site, "lateext")
    inprocess._observer.find_spec("lateext")  # import lateext: the observer notes it
    inprocess._observer.find_spec("decimal")  # its init imports, before it is in sys.modules
    inprocess._observer.find_spec("numbers")
    monkeypatch.setitem(sys.modules, "lateext", module)  # init done: the import system adds it
    inprocess._observer.find_spec("json")  # the program's next import
    assert "python_popcon.imported_package.lateext:1|c" in listener.lines()


def test_a_stale_listing_never_sends_a_package_now_installed_from_local_files(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # thesis 0.9 from PyPI, then `pip install ./thesis` (the user's own copy) within one
    # tick of the directory's mtime (1 s or 2 s on some NFS exports, ext3, FAT): the import
    # system's listing still names thesis-0.9.dist-info, which is gone. `_listing` trusts
    # it, the shortcut finds no direct_url.json under the vanished entry and answers
    # "site"; classify reads the same listing and agrees, so the local package is sent.
    add_dist(site, "thesis", {"thesis/__init__.py": ""}, version="0.9")
    finder = importlib.machinery.FileFinder(
        str(site), (importlib.machinery.SourceFileLoader, [".py"])
    )
    monkeypatch.setitem(sys.path_importer_cache, str(site), finder)
    finder.find_spec("thesis")  # the import system lists the directory
    mtime = os.stat(site).st_mtime_ns
    shutil.rmtree(site / "thesis-0.9.dist-info")
    add_dist(site, "thesis", {}, version="1.0", direct_url=LOCAL_DIR)
    os.utime(site, ns=(mtime, mtime))  # the same mtime, as a coarse clock gives
    assert _both(site, "thesis", _package(site, "thesis")) == (None, None)
