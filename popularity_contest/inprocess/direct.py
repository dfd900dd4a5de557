"""Direct imports: the packages this process's own code imports itself (issue 15).

An *import hook* takes the place of ``builtins.__import__``, which every ``import``
statement calls. It never wraps the import: the hook is an object whose ``__call__`` is a
descriptor, so looking the method up (which the interpreter does, in C, on each call) runs
:meth:`_Lookup.__get__`, which looks at the calling frame and returns the previous
``__import__`` itself; the interpreter then calls that from C. No frame of ours is on the
stack while a module is imported, so tracebacks, ``warnings`` attribution
(``stacklevel``), ``sys._getframe`` and exceptions are exactly what they were.

The calling frame is *user code* when the module it runs in (its globals' ``__name__`` and
``__file__``) is not one of this interpreter's installed files: ``__main__`` without a file
(``python -c``, a notebook cell, an IPython line, standard input), or a module or script
whose file lies outside the installation prefixes and site directories. Its current
instruction must be ``IMPORT_NAME`` (an ``import`` statement, not a call that happens to
import from C) with level 0 (relative imports name the importer's own package); the
imported name's top-level part is then handed to the reporter. Verdicts are cached by
module, so the cost for library code is one frame read and one dictionary look-up.

Standard library only; never raises.
"""

import builtins
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import FrameType

_getframe = sys._getframe
_OURS = "popularity_contest"


#: (IMPORT_NAME, EXTENDED_ARG, LOAD_CONST) by version: importing `opcode` costs ~2 M
#: instructions at start-up; a test compares these with `opcode.opmap`.
KNOWN_OPCODES = {(3, 10): (108, 144, 100), (3, 11): (108, 144, 100), (3, 12): (108, 144, 100),
                 (3, 13): (75, 71, 83)}  # fmt: skip


def _opcodes() -> "tuple[int, int, int, frozenset[int]]":
    known = KNOWN_OPCODES.get(sys.version_info[:2])
    if known is not None:
        return (*known, frozenset({known[2]}))
    import opcode

    opmap = opcode.opmap
    loads = frozenset(opmap[n] for n in ("LOAD_CONST", "LOAD_SMALL_INT") if n in opmap)
    return opmap["IMPORT_NAME"], opmap["EXTENDED_ARG"], opmap["LOAD_CONST"], loads


_IMPORT_NAME, _EXTENDED_ARG, _LOAD_CONST, _LOADS = _opcodes()


def _instruction(code: bytes, i: int) -> "tuple[int, int]":
    """``(argument, start)`` of the instruction whose opcode is at ``i``, its
    ``EXTENDED_ARG`` prefixes included."""
    arg = code[i + 1]
    shift = 8
    while i >= 2 and code[i - 2] == _EXTENDED_ARG:
        i -= 2
        arg |= code[i + 1] << shift
        shift += 8
    return arg, i


def imported_name(frame: "FrameType") -> "str | None":
    """The module name of the absolute ``import`` statement ``frame`` is executing, if any."""
    code_object = frame.f_code
    code = code_object.co_code
    i = frame.f_lasti
    if i < 4 or code[i] != _IMPORT_NAME:
        return None
    name_arg, start = _instruction(code, i)
    # `import x` is LOAD_CONST <level>; LOAD_CONST <fromlist>; IMPORT_NAME <name>.
    j = start - 2
    if j < 0 or code[j] not in _LOADS:
        return None
    _fromlist, start = _instruction(code, j)
    k = start - 2
    if k < 0 or code[k] not in _LOADS:
        return None
    level_arg, _start = _instruction(code, k)
    level = code_object.co_consts[level_arg] if code[k] == _LOAD_CONST else level_arg
    if type(level) is not int or level != 0:
        return None  # a relative import names the importer's own package
    name = code_object.co_names[name_arg]
    return name if type(name) is str else None


def _places() -> "set[str]":
    """Where installed code lives: the installation prefixes, the standard library and the
    site directories."""
    places = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
    places.add(os.path.dirname(os.__file__))
    site = sys.modules.get("site")
    try:
        if site is not None:
            places.update(site.getsitepackages())
            if site.ENABLE_USER_SITE:
                places.add(site.getusersitepackages())
    except Exception:  # a replaced `site`: the prefixes still cover the environment
        pass
    places.update(p for p in sys.path if type(p) is str and p.endswith("-packages"))
    return {p for p in places if type(p) is str and p}


def _prefixes(paths: "Iterable[str]") -> "tuple[str, ...]":
    return tuple(sorted({os.path.normcase(p).rstrip(os.sep) + os.sep for p in paths}))


_NOT_USER = frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names) | {_OURS}


class Verdicts:
    """Which modules are user code: decided once per top-level package (or ``__main__``
    file), from where its file lies, never from the code object's file name."""

    __slots__ = ("_main", "_places", "_real", "_tops", "modules")

    def __init__(self) -> None:
        #: Module name -> is user code (the hook's fast path reads it directly).
        self.modules: dict[str, bool] = {}
        self._tops: dict[str, bool] = {}
        self._main: dict[object, bool] = {}
        self._places: tuple[str, ...] | None = None
        self._real: tuple[str, ...] | None = None

    def installed(self, path: str) -> bool:
        """True if ``path`` lies in the installation or a site directory (symbolic links
        resolved only for paths not found as written)."""
        if self._places is None:
            self._places = _prefixes(map(os.path.abspath, _places()))
        if os.path.normcase(os.path.abspath(path)).startswith(self._places):
            return True
        if self._real is None:
            self._real = _prefixes([*self._places, *map(os.path.realpath, _places())])
        return os.path.normcase(os.path.realpath(path)).startswith(self._real)

    def is_user(self, namespace: "dict[str, object]") -> bool:
        name = namespace.get("__name__")
        if type(name) is not str:
            return False
        verdict = self.modules.get(name)
        if verdict is not None:
            return verdict
        file = namespace.get("__file__")
        if name == "__main__":
            # No file: `python -c`, a notebook cell, an IPython line, standard input.
            key = file if type(file) is str else None
            verdict = self._main.get(key)
            if verdict is None:
                verdict = self._main[key] = key is None or not self.installed(key)
            return verdict  # not cached by name: `__main__` can be several namespaces
        top = name.partition(".")[0]
        verdict = self._tops.get(top)
        if verdict is None:
            verdict = top not in _NOT_USER and type(file) is str and not self.installed(file)
            if type(file) is str:
                self._tops[top] = verdict
        self.modules[name] = verdict
        return verdict


class _Lookup:
    """``ImportHook.__call__``: a descriptor whose ``__get__`` observes and returns the
    previous ``__import__``, which the interpreter then calls (from C)."""

    __slots__ = ()

    def __get__(self, hook: "ImportHook | None", owner: object = None) -> object:
        if hook is None:
            return self
        previous = hook.previous
        note = hook.note
        if note is not None:
            try:
                frame = _getframe(1)
                namespace = frame.f_globals
                name = namespace.get("__name__")
                # The fast path: a library module already decided.
                if type(name) is str and hook.modules.get(name) is False:
                    return previous
                if hook.verdicts.is_user(namespace):
                    imported = imported_name(frame)
                    if imported is not None:
                        note(imported.partition(".")[0])
            except Exception:  # never disturb an import
                pass
        return previous


class ImportHook:
    """What ``builtins.__import__`` is while direct imports are counted."""

    __slots__ = ("modules", "note", "previous", "verdicts")
    __call__ = _Lookup()

    def __init__(self, previous: object, note: "Callable[[str], None]") -> None:
        self.previous = previous
        self.note: Callable[[str], None] | None = note
        self.verdicts = Verdicts()
        self.modules = self.verdicts.modules

    def __repr__(self) -> str:
        return repr(self.previous)

    def __getattr__(self, name: str) -> object:  # __name__, __doc__, __module__...
        return getattr(self.previous, name)


def install(note: "Callable[[str], None]") -> ImportHook:
    """Put a hook calling ``note(top_level_name)`` in place of ``builtins.__import__``."""
    hook = ImportHook(builtins.__import__, note)
    builtins.__import__ = hook  # type: ignore[assignment]
    return hook


def uninstall(hook: ImportHook) -> None:
    """Stop observing; give ``builtins.__import__`` back if no one wrapped the hook since
    (otherwise the hook stays in their chain and only passes calls on)."""
    hook.note = None
    if builtins.__import__ is hook:  # type: ignore[comparison-overlap]
        builtins.__import__ = hook.previous  # type: ignore[assignment]


#: How many frames ``import_module_caller`` walks up from the finder.
MAX_FRAMES = 40


def import_module_caller(hook: ImportHook) -> bool:
    """Called by the reporter's finder on a first import: True if ``importlib.import_module``
    called by user code is what imports (frames of ``importlib._bootstrap`` skipped)."""
    importlib = sys.modules.get("importlib")
    target = getattr(getattr(importlib, "import_module", None), "__code__", None)
    if target is None:
        return False
    frame: FrameType | None = _getframe(2)
    for _ in range(MAX_FRAMES):
        if frame is None:
            return False
        code = frame.f_code
        if code is target:
            caller = frame.f_back
            return caller is not None and hook.verdicts.is_user(caller.f_globals)
        if not code.co_filename.startswith("<frozen importlib"):
            return False
        frame = frame.f_back
    return False
