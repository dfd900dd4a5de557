"""The direct-import hook inside this process: verdicts, look-up, chaining, never raising.

The real-process behaviour (what is sent) is in tests/integration/test_reporter_direct.py.
"""

from __future__ import annotations

import builtins
import importlib
import os
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from popularity_contest.inprocess import direct


@pytest.fixture
def hook() -> Iterator[tuple[direct.ImportHook, list[str]]]:
    seen: list[str] = []
    installed = direct.install(seen.append)
    try:
        yield installed, seen
    finally:
        direct.uninstall(installed)


def test_verdicts_follow_where_a_module_lives(tmp_path: Path) -> None:
    verdicts = direct.Verdicts()
    stdlib = sysconfig.get_path("stdlib")
    assert verdicts.is_user({"__name__": "__main__"})  # python -c, a cell
    assert verdicts.is_user({"__name__": "__main__", "__file__": str(tmp_path / "s.py")})
    assert not verdicts.is_user({"__name__": "__main__", "__file__": f"{sys.prefix}/bin/tool"})
    assert verdicts.is_user({"__name__": "analysis", "__file__": str(tmp_path / "analysis.py")})
    assert not verdicts.is_user({"__name__": "json", "__file__": f"{stdlib}/json/__init__.py"})
    assert not verdicts.is_user({"__name__": "popularity_contest.x", "__file__": __file__})
    assert not verdicts.is_user({"__name__": "nofile"})  # an exec namespace of a library
    assert not verdicts.is_user({"__name__": 42})
    assert not verdicts.is_user({})
    # Decided once per module: the cache answers the second time.
    assert verdicts.modules["analysis"] is True


def test_a_symbolic_link_into_the_installation_is_installed(tmp_path: Path) -> None:
    link = tmp_path / "linked_stdlib"
    link.symlink_to(os.path.dirname(os.__file__))
    assert direct.Verdicts().installed(str(link / "json" / "__init__.py"))
    assert not direct.Verdicts().installed(str(tmp_path / "mine.py"))


def test_the_hook_reports_statements_and_hands_back_the_previous_import(
    hook: tuple[direct.ImportHook, list[str]],
) -> None:
    installed, seen = hook
    assert builtins.__import__ is installed  # type: ignore[comparison-overlap]
    assert repr(installed) == repr(installed.previous)
    assert installed.__name__ == "__import__"  # forwarded to the original
    assert type(installed).__call__ is type(installed).__dict__["__call__"]
    import json.decoder  # noqa: F401

    module = __import__("os")  # a call, not a statement: not reported
    assert module is os
    assert seen == ["json"]


def test_a_failing_observer_never_disturbs_the_import() -> None:
    def boom(name: str) -> None:
        raise RuntimeError(name)

    installed = direct.install(boom)
    try:
        import json  # noqa: F401
    finally:
        direct.uninstall(installed)
    assert builtins.__import__ is installed.previous


def test_stop_under_another_wrapper_leaves_it_working(
    hook: tuple[direct.ImportHook, list[str]],
) -> None:
    installed, seen = hook
    calls: list[str] = []

    def theirs(name: str, *args: object, **kwargs: object) -> object:
        calls.append(name)
        return installed(name, *args, **kwargs)

    builtins.__import__ = theirs
    try:
        direct.uninstall(installed)
        assert builtins.__import__ is theirs
        import json  # noqa: F401

        assert calls == ["json"]
        assert seen == []  # the hook only passes calls on once stopped
    finally:
        builtins.__import__ = installed.previous  # type: ignore[assignment]


def test_import_module_from_user_code_is_recognised(
    hook: tuple[direct.ImportHook, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    installed, _seen = hook
    answers: list[bool] = []

    class Finder:
        def find_spec(self, name: str, path: object = None, target: object = None) -> None:
            if name == "popcon_no_such_module":
                answers.append(direct.import_module_caller(installed))

    monkeypatch.setattr(sys, "meta_path", [Finder(), *sys.meta_path])
    with pytest.raises(ImportError):
        importlib.import_module("popcon_no_such_module")
    with pytest.raises(ImportError):
        import popcon_no_such_module  # noqa: F401
    # This test module lives outside the installation: user code; a statement is not
    # import_module (the hook sees statements itself).
    assert answers == [True, False]
