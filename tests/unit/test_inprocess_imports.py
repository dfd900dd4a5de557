"""What runs inside users' processes imports only the standard library (issue 14).

Every module of ``popularity_contest/inprocess/`` and ``popularity_contest/reporter.py`` is
parsed; each import must name a standard-library module, ``popularity_contest.inprocess``
itself or ``popularity_contest.names``. The real-process counterpart (activation and exit
load none of socket, threading, typing, ...) is
``tests/integration/test_reporter.py::test_activation_and_exit_import_nothing_heavy``.
"""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

import pytest

from popularity_contest.inprocess import process

PACKAGE = Path(__file__).resolve().parents[2] / "popularity_contest"
MODULES = [*sorted((PACKAGE / "inprocess").glob("*.py")), PACKAGE / "reporter.py"]
ALLOWED_OURS = ("popularity_contest.inprocess", "popularity_contest.names")
STDLIB = frozenset(sys.stdlib_module_names)


def imported(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            base = node.module or ""
            if base == "popularity_contest":
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, base))
    return found


def allowed(name: str) -> bool:
    if name.split(".", maxsplit=1)[0] in STDLIB:
        return True
    return any(name == ours or name.startswith(ours + ".") for ours in ALLOWED_OURS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_only_the_standard_library_and_our_own_inprocess_modules(path: Path) -> None:
    bad = [f"{path.name}:{line}: {name}" for line, name in imported(path) if not allowed(name)]
    assert bad == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_future_import_on_the_start_up_path(path: Path) -> None:
    # `from __future__ import ...` imports the __future__ module at run time (~0.15 ms).
    assert "__future__" not in [name for _line, name in imported(path)]


def test_the_checker_would_catch_a_third_party_import() -> None:
    assert not allowed("statsd")
    assert not allowed("popularity_contest.collector.store")
    assert allowed("popularity_contest.inprocess.classify")
    assert allowed("_socket")


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (["python", "-m", "ipykernel_launcher", "-f", "k.json"], process.SHELL),
        (["python", "-X", "frozen_modules=off", "-m", "ipykernel", "-f", "k.json"], process.SHELL),
        (["/env/bin/python", "/env/bin/ipython", "-c", "1"], process.SHELL),
        (["/env/bin/python3.11", "/env/bin/ipython3"], process.SHELL),
        (["python", "-mIPython"], process.SHELL),
        (["/env/bin/python", "/env/bin/jupyter-lab", "--no-browser"], process.PLUMBING),
        (["/env/bin/python", "/env/bin/jupyter", "lab"], process.PLUMBING),
        (["/env/bin/python", "/env/bin/jupyterhub-singleuser"], process.PLUMBING),
        (["/env/bin/python", "/env/bin/pip3.12", "install", "x"], process.PLUMBING),
        (["python", "-W", "ignore", "-m", "pip", "list"], process.PLUMBING),
        (["python", "-m", "jupyter_server"], process.PLUMBING),
        (["python", "-c", "import IPython"], None),
        (["python", "analysis.py"], None),
        (["python", "-m", "pytest"], None),
        (["/env/bin/python", "/env/bin/jupyter-nbconvert", "--execute", "x.ipynb"], None),
        (["python"], None),
        (["python", "-"], None),
    ],
)
def test_program_kinds(argv: list[str], kind: str | None) -> None:
    assert process.program_kind(argv) == kind


def test_the_import_hook_knows_this_interpreters_opcodes() -> None:
    # direct.py hard-codes them (importing `opcode` at start-up costs ~2 M instructions).
    import opcode

    from popularity_contest.inprocess import direct

    known = direct.KNOWN_OPCODES.get(sys.version_info[:2])
    assert known is not None, "add this Python's opcodes to KNOWN_OPCODES"
    names = ("IMPORT_NAME", "EXTENDED_ARG", "LOAD_CONST")
    assert known == tuple(opcode.opmap[name] for name in names)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import a.b", "a.b"),
        ("from a import b", "a"),
        ("from . import b", None),
        ("from .a import b", None),
        ("def f():\n    import a\nf()", "a"),
    ],
)
def test_the_import_hook_reads_the_statement_being_run(source: str, expected: str | None) -> None:
    from popularity_contest.inprocess import direct

    seen: list[str | None] = []

    def fake_import(*args: object, **kwargs: object) -> object:
        seen.append(direct.imported_name(sys._getframe(1)))
        return types.SimpleNamespace(b=1)

    code = compile(source, "<test>", "exec")
    exec(code, {"__builtins__": {"__import__": fake_import}, "__name__": "pkg.mod"})  # noqa: S102
    assert seen == [expected]
