"""Count the packages this process imports, privately, once each, without harming it.

``import popularity_contest.reporter`` activates reporting (usually from an IPython startup
file or a ``.pth``; ``popularity-contest install`` writes either). At that moment it
remembers which top-level modules are already imported (the *snapshot*). From then on:

* an *import observer* (a ``sys.meta_path`` entry that only watches and never finds
  anything) notes each new top-level name; as soon as the module is in ``sys.modules`` (at
  the next import, after each IPython cell, or at exit) it is classified and, if it is a
  package from an installed distribution, sent at once, so a kernel that is later
  SIGKILLed has already been counted;
* an ``atexit`` hook sends whatever the observer missed, and the ``processes_reported``
  counter if nothing was sent yet;
* whenever an IPython shell exists (whatever activated the reporter) a ``post_run_cell``
  hook sends what each cell imported.

Plumbing (see :mod:`popularity_contest.inprocess.process`): in an IPython shell or kernel
started while the ``.pth`` is active, the snapshot grows until the first import made by the
user's code (code running in the shell's namespace), so what IPython imports to start
itself is never counted, exactly as with the startup file. The Jupyter server, pip and the
``jupyter`` launcher do not activate at all. A process that ``exec``\\s (same pid) counts
once: the ``PYTHON_POPCONTEST_COUNTED`` variable (``<pid>:<names sent>``) tells the new
image what the old one already sent.

Rules for code in this module, which runs inside other people's processes: it never
raises, prints or warns (``PYTHON_POPCONTEST_DEBUG=1`` writes diagnostics to stderr); it
imports only ``_socket`` and only when it sends; the address is resolved once, in a
short-lived thread, and nothing ever waits on it for longer than ``EXIT_WAIT`` seconds;
sends are non-blocking. A forked child keeps its parent's already-counted set, reports
only what it imports itself, and is not counted as a new process.
"""

import _thread
import atexit
import os
import sys

from popularity_contest.inprocess import lines as wire
from popularity_contest.inprocess import process
from popularity_contest.inprocess import settings as _config
from popularity_contest.inprocess.process import Address
from popularity_contest.names import (
    LEAF_DIRECTLY_IMPORTED_PACKAGE,
    LEAF_DIRECTLY_IMPORTED_USER_PACKAGE,
    LEAF_LIBRARY_USED,
    LEAF_PROCESSES_REPORTED,
)

# `typing` costs milliseconds to import and is not loaded at start-up: only mypy sees this.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

    from popularity_contest.inprocess.classify import Classifier
    from popularity_contest.inprocess.direct import ImportHook
    from popularity_contest.inprocess.settings import ReporterConfig

#: Longest the exit hook waits for the collector's address to resolve (seconds).
EXIT_WAIT = 0.05
#: Longest ``PYTHON_POPCONTEST_COUNTED`` grows (characters); beyond it, names are not added.
MAX_COUNTED = 8192


class _Reporter:
    """Everything one activation remembers. All methods are called under ``lock``."""

    def __init__(self, cfg: "ReporterConfig", starting_shell: bool) -> None:
        self.config = cfg
        self.baseline: set[str] = set()
        self.decided: set[str] = set()  # top-level names already classified (sent or not)
        self.candidates: set[str] = set()  # seen by the observer, not yet classified
        self.outbox: list[str] = []  # lines waiting for the address
        self.process_counted = False
        self.distributions_sent: set[str] = set()
        self.sent: list[str] = []  # package names sent, for PYTHON_POPCONTEST_COUNTED
        self.sent_kind: dict[str, str] = {}  # package sent -> SITE or USER
        #: Direct imports (issue 15): names user code imported, not decided yet; names done.
        self.direct_pending: set[str] = set()
        self.direct_done: set[str] = set()
        self.direct_sent: list[str] = []
        self.hook: ImportHook | None = None
        self._classifier: Classifier | None = None
        #: True while an IPython shell or kernel is starting: what it imports is plumbing.
        self.starting_shell = starting_shell
        self.shell: object = None  # the IPython shell whose post_run_cell we hooked
        self.lock = _thread.allocate_lock()
        self.address = Address(cfg.host, cfg.port)
        self.sock: Any = None
        self.snapshot_baseline()
        self.inherit_exec_marker()

    @property
    def classifier(self) -> "Classifier":
        if self._classifier is None:
            from popularity_contest.inprocess.classify import Classifier

            self._classifier = Classifier(count_local=self.config.count_local)
        return self._classifier

    def snapshot_baseline(self) -> None:
        self.baseline.update(
            name.partition(".")[0] for name in list(sys.modules) if type(name) is str
        )

    def inherit_exec_marker(self) -> None:
        """After ``exec`` in the same process: what the previous image sent stays sent."""
        pid, _, names = os.environ.get(_config.COUNTED, "").partition(":")
        if pid == str(os.getpid()):
            names, _, direct = names.partition("/")
            self.process_counted = True
            self.sent = [n for n in names.split(",") if n]
            self.decided.update(self.sent)
            self.direct_sent = [n for n in direct.split(",") if n]
            self.direct_done.update(self.direct_sent)

    def debug(self, message: str) -> None:
        if self.config.debug:
            try:
                sys.stderr.write(f"popularity-contest: {message}\n")
            except Exception:  # stderr closed or replaced: diagnostics are best effort
                pass

    # -- IPython ----------------------------------------------------------------------
    def watch_shell(self) -> None:
        """Hook ``post_run_cell`` into the IPython shell, once it exists."""
        shell = process.ipython_shell()
        if shell is None or shell is self.shell:
            return
        try:
            events = object.__getattribute__(shell, "__dict__").get("events")
            events.register("post_run_cell", _after_cell)
            self.shell = shell
        except Exception as error:  # a shell without events: the exit hook still reports
            self.debug(f"post_run_cell: {error!r}")

    def end_startup_if_user_code(self) -> None:
        """While a shell starts: once the user's code imports, the snapshot is complete."""
        if process.user_code_running():
            self.starting_shell = False
            self.snapshot_baseline()
            self.candidates.difference_update(self.baseline)
            self.watch_shell()
            self.debug("IPython started: its imports are part of the snapshot")

    # -- deciding -------------------------------------------------------------------
    def lines_for(self, names: "Iterable[str]", modules: "Mapping[str, object]") -> "list[str]":
        """Classify names not decided yet; the statsd lines for those that count."""
        lines: list[str] = []
        for name in sorted(names):
            if name in self.decided:
                continue
            self.decided.add(name)
            try:  # one odd module must never cost the others
                lines.extend(self.lines_for_one(name, modules))
            except Exception as error:
                self.debug(f"{name}: {error!r}")
        return lines

    def lines_for_one(self, name: str, modules: "Mapping[str, object]") -> "list[str]":
        from popularity_contest.inprocess.classify import USER, top_level

        if top_level(name) != name:
            return []
        found = self.classifier.classify(name, modules)
        if found is None or not wire.is_safe_component(name):
            return []
        kind, dist = found
        prefix = self.config.prefix
        lines = [wire.counter_line(wire.package_name(prefix, name, user_site=kind == USER))]
        self.sent.append(name)
        self.sent_kind[name] = kind
        if self.config.count_distributions:
            # A namespace package names the owners of the files imported under it, now or
            # at a later sweep; anything else names its distribution.
            if name in self.classifier.namespaces:
                lines.extend(
                    self.distribution_lines(self.classifier.namespace_owners(name, modules))
                )
            else:
                lines.extend(self.distribution_lines({dist.name}))
        return lines

    def distribution_lines(self, owners: "Iterable[str]") -> "list[str]":
        lines = []
        for owner in sorted(owners):
            if owner and owner not in self.distributions_sent and wire.is_safe_component(owner):
                self.distributions_sent.add(owner)
                name = f"{wire.sibling(self.config.prefix, LEAF_LIBRARY_USED)}.{owner}"
                lines.append(wire.counter_line(name))
        return lines

    def namespace_lines(self, modules: "Mapping[str, object]") -> "list[str]":
        """Distributions newly imported under counted namespace packages (google.auth)."""
        if not self.config.count_distributions or self._classifier is None:
            return []
        owners: set[str] = set()
        for name in list(self._classifier.namespaces):
            try:
                owners.update(self._classifier.namespace_owners(name, modules))
            except Exception as error:  # noqa: PERF203 - one odd package never costs the others
                self.debug(f"{name}: {error!r}")
        return self.distribution_lines(owners)

    # -- direct imports ---------------------------------------------------------------
    def note_direct(self, name: str) -> None:
        """The import hook saw user code import top-level ``name`` (before the import)."""
        if name in self.direct_done or name in self.baseline:
            return
        self.direct_pending.add(name)
        if name in self.sent_kind and self.lock.acquire(False):
            try:  # already counted as a package: send at once, a kernel may die next
                self.emit([], wait=0.0)
            finally:
                self.lock.release()

    def direct_lines(self) -> "list[str]":
        """Lines for the pending direct imports of packages already sent; pending names
        decided not to count are dropped. Never a direct line without its package."""
        lines: list[str] = []
        for name in sorted(self.direct_pending):
            kind = self.sent_kind.get(name)
            if kind is not None:
                leaf = LEAF_DIRECTLY_IMPORTED_PACKAGE
                if kind == "user":  # classify.USER, without importing classify here
                    leaf = LEAF_DIRECTLY_IMPORTED_USER_PACKAGE
                lines.append(wire.counter_line(f"{wire.sibling(self.config.prefix, leaf)}.{name}"))
                self.direct_sent.append(name)
            elif name not in self.decided and name not in self.baseline:
                continue  # not imported yet (or failed): decide later
            self.direct_pending.discard(name)
            self.direct_done.add(name)
        return lines

    def settle(self) -> None:
        """Classify the observed names whose modules are now in ``sys.modules``."""
        modules = sys.modules
        if self.shell is None and "IPython.core.interactiveshell" in modules:
            self.watch_shell()
        ready = [name for name in self.candidates if name in modules]
        if ready:
            self.candidates.difference_update(ready)
            self.emit(self.lines_for(ready, modules), wait=0.0)

    def sweep(self, wait: float) -> None:
        """Classify every new top-level name in ``sys.modules`` and send (exit, cell end)."""
        modules = sys.modules
        if self.starting_shell:
            self.snapshot_baseline()  # the shell never ran user code that imported
        names = {name.partition(".")[0] for name in list(modules) if type(name) is str}
        names.difference_update(self.baseline)
        self.candidates.difference_update(names)
        lines = self.lines_for(names, modules)
        lines.extend(self.namespace_lines(modules))
        self.emit(lines, wait=wait, final=wait > 0)

    # -- sending ----------------------------------------------------------------------
    def emit(self, lines: "list[str]", wait: float, final: bool = False) -> None:
        if self.direct_pending:
            lines.extend(self.direct_lines())
        if not self.process_counted and (lines or final):
            self.process_counted = True
            name = wire.sibling(self.config.prefix, LEAF_PROCESSES_REPORTED)
            lines.insert(0, wire.counter_line(name))
        self.outbox.extend(lines)
        if not self.outbox:
            return
        address = self.address.get(wait)
        if address is None:
            if final:
                self.debug("collector address unknown: report dropped")
            return
        datagrams = wire.pack(self.outbox, self.config.max_datagram)
        self.outbox.clear()
        self.send(address, datagrams)
        if not final:
            self.mark_counted()

    def mark_counted(self) -> None:
        """Tell an ``exec``'d image of this process what is already sent."""
        text = f"{os.getpid()}:{','.join(self.sent)}"
        if self.direct_sent:
            text += f"/{','.join(self.direct_sent)}"
        if len(text) > MAX_COUNTED:
            text = text[: text.rfind(",", 0, MAX_COUNTED)]
        if os.environ.get(_config.COUNTED) != text:
            os.environ[_config.COUNTED] = text

    def send(self, address: "tuple[str, tuple[Any, ...]]", datagrams: "list[bytes]") -> None:
        import _socket

        family, sockaddr = address
        if self.sock is None:
            self.sock = _socket.socket(getattr(_socket, family), _socket.SOCK_DGRAM)
            self.sock.setblocking(False)
        for datagram in datagrams:
            try:
                self.sock.sendto(datagram, sockaddr)
            except OSError as error:  # refused, full buffer, no route: drop, never wait
                self.debug(f"send failed: {error!r}")
                return
            if self.config.debug:
                self.debug(f"sent {datagram!r}")

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()


# `importlib.reload` re-runs this module in the same namespace: keep an activation that
# already exists, so a reload can never activate reporting twice.
_state: "_Reporter | None" = globals().get("_state")


class _ImportObserver:
    """A ``sys.meta_path`` entry that watches imports and never finds anything."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        state = _state
        if state is None:
            return
        # Runs inside every import of the process: an error here must never break it.
        try:
            top = fullname.partition(".")[0]
            if top not in state.baseline and top not in state.decided:
                if state.starting_shell:
                    state.end_startup_if_user_code()
                    if state.starting_shell or top in state.baseline:
                        return
                state.candidates.add(top)
                if state.hook is not None:
                    from popularity_contest.inprocess.direct import import_module_caller

                    if import_module_caller(state.hook):
                        state.note_direct(top)
            if state.candidates and not state.starting_shell and state.lock.acquire(False):
                try:
                    state.settle()
                finally:
                    state.lock.release()
        except Exception as error:
            state.debug(f"observer: {error!r}")

    def invalidate_caches(self) -> None:
        """Nothing cached here; ``importlib.invalidate_caches`` calls every finder."""


_observer: _ImportObserver = globals().get("_observer") or _ImportObserver()


def _note_direct(name: str) -> None:
    state = _state
    if state is not None:
        state.note_direct(name)


def _at_exit() -> None:
    state = _state
    if state is None:
        return
    # The exit hook of the user's process: whatever happens, stay silent.
    try:
        locked = state.lock.acquire(timeout=EXIT_WAIT)
        try:
            state.sweep(wait=EXIT_WAIT)
            state.close()
        finally:
            if locked:
                state.lock.release()
    except Exception as error:
        state.debug(f"exit: {error!r}")


def _after_cell(result: object = None) -> None:
    """IPython ``post_run_cell``: report what the cell imported, before the kernel can die."""
    state = _state
    if state is None:
        return
    # Runs inside the user's IPython session: never raise into it.
    try:
        if state.lock.acquire(False):
            try:
                if state.starting_shell:
                    state.starting_shell = False  # a cell ran: the shell has started
                    state.snapshot_baseline()
                state.sweep(wait=0.0)
            finally:
                state.lock.release()
    except Exception as error:
        state.debug(f"post_run_cell: {error!r}")


def _after_fork_in_child() -> None:
    state = _state
    if state is None:
        return
    # Runs in every forked child of the user's process: never raise there.
    try:
        # What the parent imported is the parent's to report; the child counts only what
        # it imports itself, and it is not a new process.
        state.lock = _thread.allocate_lock()
        state.snapshot_baseline()
        state.baseline.update(state.candidates)
        state.candidates.clear()
        state.outbox.clear()
        state.direct_pending.clear()
        state.process_counted = True
        state.sock = None  # the parent's socket stays the parent's
        state.address.after_fork()
    except Exception as error:
        state.debug(f"fork: {error!r}")


_fork_hook_registered: bool = globals().get("_fork_hook_registered", False)


def setup_reporter(environ: "Mapping[str, str] | None" = None) -> bool:
    """Activate reporting in this process (once); True if it is active afterwards.

    ``environ`` defaults to ``os.environ``. Importing :mod:`popularity_contest.reporter`
    calls it; importing this module does not. Plumbing programs (the Jupyter server, pip,
    see :mod:`popularity_contest.inprocess.process`) are never activated.
    """
    global _state, _fork_hook_registered  # noqa: PLW0603 - one activation per process
    if _state is not None:
        return True
    cfg = _config.reporter_config(environ)
    if cfg.disabled:
        if cfg.debug and cfg.problem:
            sys.stderr.write(f"popularity-contest: not reporting: {cfg.problem}\n")
        return False
    kind = process.program_kind()
    if kind == process.PLUMBING:
        return False
    shell_exists = process.ipython_shell() is not None
    _state = state = _Reporter(cfg, starting_shell=kind == process.SHELL and not shell_exists)
    if cfg.eager:
        sys.meta_path.insert(0, _observer)
        state.watch_shell()
    if cfg.count_direct:
        from popularity_contest.inprocess import direct

        state.hook = direct.install(_note_direct)
    atexit.register(_at_exit)
    if not _fork_hook_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_hook_registered = True
    state.debug(f"active: {cfg!r}")
    return True


def stop() -> None:
    """Deactivate reporting without sending anything (for the tool's own processes)."""
    global _state
    state, _state = _state, None
    if state is None:
        return
    atexit.unregister(_at_exit)
    if state.hook is not None:
        from popularity_contest.inprocess import direct

        direct.uninstall(state.hook)
    while _observer in sys.meta_path:
        sys.meta_path.remove(_observer)
    try:
        events = object.__getattribute__(state.shell, "__dict__").get("events")
        events.unregister("post_run_cell", _after_cell)
    except Exception:  # no shell, or it was not registered
        pass
    state.close()


def is_active() -> bool:
    return _state is not None


def get_used_packages(
    initial_modules: "Iterable[object]",
    current_modules: "Iterable[object]",
    *,
    modules: "Mapping[str, object] | None" = None,
    count_local: bool = False,
) -> "dict[str, str]":
    """The packages a process would report, computed without exiting.

    Returns ``{package: kind}`` (kind ``"site"`` or ``"user"``) for the top-level names in
    ``current_modules`` that are not in ``initial_modules`` and count (see
    :mod:`popularity_contest.inprocess.classify`). ``modules`` maps names to module objects
    (default ``sys.modules``).
    """
    from popularity_contest.inprocess import classify

    classifier = classify.Classifier(count_local=count_local)
    found: dict[str, str] = {}
    for name in sorted(classify.new_top_level(initial_modules, current_modules)):
        result = classifier.classify(name, modules)
        if result is not None:
            found[name] = result[0]
    return found


def get_used_libraries(
    initial_modules: "Iterable[object]",
    current_modules: "Iterable[object]",
    *,
    modules: "Mapping[str, object] | None" = None,
) -> "set[str]":
    """Normalised names of the distributions providing the packages reported; a namespace
    package shared by several distributions names those whose files were imported."""
    from popularity_contest.inprocess import classify

    classifier = classify.Classifier()
    mods = sys.modules if modules is None else modules
    found: set[str] = set()
    for name in classify.new_top_level(initial_modules, current_modules):
        result = classifier.classify(name, mods)
        if result is not None and result[1].name:
            found.update(classifier.namespace_owners(name, mods) or {result[1].name})
    return found
