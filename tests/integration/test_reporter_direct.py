"""Direct imports (issue 15) in real processes, sent to a real UDP socket on 127.0.0.1.

A hand-made venv holds ``alpha`` (which imports ``beta`` itself), ``beta``, ``gamma`` and
``tool`` (an installed package that imports ``gamma``); the user's own code lives in the
working directory, outside the venv.
"""

from __future__ import annotations

import builtins
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tests.envkit import Env, Listener, add_dist, clean_env

ACTIVATE = "import popularity_contest.reporter\n"
PROCESS = "python_popcon.processes_reported:1|c"
#: Direct imports are opt-in (see docs/concepts/what-is-counted.md).
ON = {"PYTHON_POPCONTEST_COUNT_DIRECT": "1"}


def pkg(name: str) -> str:
    return f"python_popcon.imported_package.{name}:1|c"


def direct(name: str) -> str:
    return f"python_popcon.directly_imported_package.{name}:1|c"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    e = Env(tmp_path_factory.mktemp("direct") / "env")
    e.add_dist("alpha", {"alpha/__init__.py": "import beta\nfrom beta import VALUE\n"})
    e.add_dist("beta", {"beta/__init__.py": "VALUE = 1\n", "beta/sub.py": ""})
    e.add_dist("gamma", {"gamma.py": ""})
    e.add_dist("tool", {"tool/__init__.py": "def load():\n    import gamma\n"})
    return e


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "analysis.py").write_text("import gamma\n")  # a user's own module
    return tmp_path


def run(env: Env, listener: Listener, code: str, cwd: Path, **extra: str) -> list[str]:
    result = env.run(code, env=listener.env(**{**ON, **extra}), cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return sorted(listener.lines())


def run_script(env: Env, listener: Listener, work: Path, source: str) -> list[str]:
    (work / "script.py").write_text(source)
    result = subprocess.run(
        [str(env.python), "script.py"], env=clean_env(listener.env(**ON)), cwd=work,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return sorted(listener.lines())


def test_a_library_import_is_not_direct_until_user_code_imports_it(
    env: Env, listener: Listener, work: Path
) -> None:
    lines = run_script(env, listener, work, ACTIVATE + "import alpha\n")
    assert lines == sorted([PROCESS, pkg("alpha"), pkg("beta"), direct("alpha")])
    listener.clear()
    # The script then imports beta itself: already in sys.modules, still direct.
    lines = run_script(env, listener, work, ACTIVATE + "import alpha\nfrom beta import sub\n")
    assert lines == sorted([PROCESS, pkg("alpha"), pkg("beta"), direct("alpha"), direct("beta")])


def test_user_site_packages_are_directly_imported_apart(
    tmp_path: Path, listener: Listener, work: Path
) -> None:
    env = Env(tmp_path / "sys", system_site_packages=True)
    user_base = tmp_path / "home" / ".local"
    user_site = user_base / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    add_dist(user_site / "site-packages", "usertool", {"usertool.py": ""})
    lines = run(env, listener, ACTIVATE + "import usertool", work, PYTHONUSERBASE=str(user_base))
    assert lines == sorted(
        [
            PROCESS,
            "python_popcon.user_imported_package.usertool:1|c",
            "python_popcon.directly_imported_user_package.usertool:1|c",
        ]
    )


@pytest.mark.parametrize(
    "statement",
    ["import beta.sub", "from beta import VALUE", "from beta import *", "import beta as b"],
)
def test_every_form_of_import_statement_counts(
    env: Env, listener: Listener, work: Path, statement: str
) -> None:
    lines = run(env, listener, ACTIVATE + statement, work)
    assert lines == sorted([PROCESS, pkg("beta"), direct("beta")])


def test_python_c_imports_inside_functions_count_when_they_run(
    env: Env, listener: Listener, work: Path
) -> None:
    code = ACTIVATE + "def later():\n    import gamma\ndef never():\n    import beta\nlater()\n"
    # beta is imported by nobody: its import statement never ran.
    assert run(env, listener, code, work) == sorted([PROCESS, pkg("gamma"), direct("gamma")])


def test_a_users_module_importing_a_package_is_direct(
    env: Env, listener: Listener, work: Path
) -> None:
    lines = run(env, listener, ACTIVATE + "import analysis", work)
    assert lines == sorted([PROCESS, pkg("gamma"), direct("gamma")])


def test_an_installed_package_importing_another_is_not_direct(
    env: Env, listener: Listener, work: Path
) -> None:
    lines = run(env, listener, ACTIVATE + "import tool\ntool.load()\n", work)
    assert lines == sorted([PROCESS, pkg("tool"), pkg("gamma"), direct("tool")])


def test_importlib_import_module_from_user_code(env: Env, listener: Listener, work: Path) -> None:
    code = ACTIVATE + "import importlib\nimportlib.import_module('alpha')\n"
    assert run(env, listener, code, work) == sorted(
        [PROCESS, pkg("alpha"), pkg("beta"), direct("alpha")]
    )


@pytest.mark.parametrize("value", ["0", ""])
def test_direct_counts_are_off_unless_asked(
    env: Env, listener: Listener, work: Path, value: str
) -> None:
    lines = run(env, listener, ACTIVATE + "import beta", work, PYTHON_POPCONTEST_COUNT_DIRECT=value)
    assert lines == sorted([PROCESS, pkg("beta")])


def test_packages_imported_before_activation_are_never_direct(
    env: Env, listener: Listener, work: Path
) -> None:
    # Direct is never sent without the package: beta is in the snapshot.
    lines = run(env, listener, "import beta\n" + ACTIVATE + "import beta, gamma", work)
    assert lines == sorted([PROCESS, pkg("gamma"), direct("gamma")])


def test_a_killed_process_already_sent_its_direct_imports(
    env: Env, listener: Listener, work: Path
) -> None:
    code = ACTIVATE + "import alpha\nimport beta\nimport os, signal\nos.kill(os.getpid(), 9)\n"
    result = env.run(code, env=listener.env(**ON), cwd=work)
    assert result.returncode == -9
    assert sorted(listener.lines()) == sorted(
        [PROCESS, pkg("alpha"), pkg("beta"), direct("alpha"), direct("beta")]
    )


FORK = ACTIVATE + (
    "import os\nimport alpha\npid = os.fork()\nif pid == 0:\n"
    "    import beta, gamma\n    raise SystemExit(0)\nos.waitpid(pid, 0)\n"
)


def test_a_forked_child_sends_only_its_own_direct_imports(
    env: Env, listener: Listener, work: Path
) -> None:
    # The child re-imports beta (the parent's, already sent by the parent): not again.
    assert run(env, listener, FORK, work) == sorted(
        [PROCESS, pkg("alpha"), pkg("beta"), direct("alpha"), pkg("gamma"), direct("gamma")]
    )


EXEC = ACTIVATE + (
    "import os, sys\nimport alpha\nif not os.environ.get('AGAIN'):\n"
    "    os.environ['AGAIN'] = '1'\n"
    "    os.execv(sys.executable, [sys.executable, '-c', sys.argv[-1]])\n"
    "import beta\n"
)


def test_an_exec_image_does_not_send_direct_imports_again(
    env: Env, listener: Listener, work: Path
) -> None:
    code = EXEC.replace("sys.argv[-1]", repr(EXEC))
    assert run(env, listener, code, work) == sorted(
        [PROCESS, pkg("alpha"), pkg("beta"), direct("alpha"), direct("beta")]
    )


HOOK_IS_INVISIBLE = (
    ACTIVATE
    + """
import builtins, sys, traceback, warnings
try:
    import no_such_module_anywhere
except ImportError:
    frames = traceback.extract_tb(sys.exc_info()[2])
    assert [f.filename for f in frames] == ["<string>"], frames
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import warns_on_import
assert caught[0].filename == "<string>", caught[0].filename
import popularity_contest.reporter as r
r.stop()
assert builtins.__import__ is ORIGINAL, builtins.__import__
"""
)


def test_the_hook_adds_no_frame_and_stop_restores_import(
    env: Env, listener: Listener, work: Path
) -> None:
    (work / "warns_on_import.py").write_text(
        "import warnings\nwarnings.warn('old', DeprecationWarning, stacklevel=2)\n"
    )
    code = "import builtins\nORIGINAL = builtins.__import__\n" + HOOK_IS_INVISIBLE
    assert run(env, listener, code, work) == []


def test_another_wrapper_installed_later_keeps_working_after_stop(
    env: Env, listener: Listener, work: Path
) -> None:
    code = ACTIVATE + (
        "import builtins\nimport popularity_contest.reporter as r\n"
        "seen = []\nours = builtins.__import__\n"
        "def theirs(*a, **k):\n    seen.append(a[0])\n    return ours(*a, **k)\n"
        "builtins.__import__ = theirs\nr.stop()\nimport gamma\n"
        "assert builtins.__import__ is theirs and 'gamma' in seen, seen\n"
    )
    assert run(env, listener, code, work) == []


def test_the_hook_in_this_process_restores_import() -> None:
    from popularity_contest.inprocess import runtime

    before = builtins.__import__
    seen: list[str] = []
    from popularity_contest.inprocess import direct as hooks

    hook = hooks.install(seen.append)
    try:
        with warnings.catch_warnings():
            import json  # noqa: F401
    finally:
        hooks.uninstall(hook)
    assert builtins.__import__ is before
    assert "json" in seen
    assert runtime is not None
