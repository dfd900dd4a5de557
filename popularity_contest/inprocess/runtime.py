"""Count the packages this process imports, privately, once each, without harming it.

``import popularity_contest.reporter`` activates reporting (usually from an IPython startup
file or a ``.pth``; ``popularity-contest install`` writes either). At that moment it
remembers which top-level modules are already imported. From then on:

* an *import observer* (a ``sys.meta_path`` entry that only watches and never finds
  anything) notes each new top-level name; as soon as the module is in ``sys.modules`` (at
  the next import, after each IPython cell, or at exit) it is classified and, if it is a
  package from an installed distribution, sent at once, so a kernel that is later
  SIGKILLed has already been counted;
* an ``atexit`` hook sends whatever the observer missed (another finder may have found a
  module before ours was asked), and the ``processes_reported`` counter if nothing was sent
  yet.

What is sent, exactly: ``<prefix>.<package>:1|c`` per package (``user_imported_package``
in place of the prefix's last component for packages from the user site directory),
optionally ``library_used.<distribution>``, and ``processes_reported:1|c`` once per
process, together with its first report (so a process that imports no package still
counts when it exits normally). See :mod:`popularity_contest.inprocess.classify` for what counts.

Rules for code in this module, which runs inside other people's processes: it never
raises, prints or warns (``PYTHON_POPCONTEST_DEBUG=1`` writes diagnostics to stderr); it
imports only ``_socket`` (not ``socket``, which costs milliseconds) and only when it sends;
the address is resolved once, IPv4 first, in a short-lived thread that ends with the
lookup, and nothing ever waits on it for longer than ``EXIT_WAIT`` seconds; sends are
non-blocking. A forked child keeps its parent's already-counted set, reports only what it
imports itself, and is not counted as a new process.
"""

from __future__ import annotations

import _thread
import atexit
import os
import sys

from popularity_contest.inprocess import classify as packages
from popularity_contest.inprocess import lines as wire
from popularity_contest.inprocess import settings as _config
from popularity_contest.names import LEAF_LIBRARY_USED, LEAF_PROCESSES_REPORTED

# `typing` costs milliseconds to import and is not loaded at start-up: only mypy sees this.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

    from popularity_contest.inprocess.settings import ReporterConfig

#: Longest the exit hook waits for the collector's address to resolve (seconds).
EXIT_WAIT = 0.05

_IPV4_PARTS = 4


def _is_ipv4(host: str) -> bool:
    parts = host.split(".")
    return len(parts) == _IPV4_PARTS and all(p.isdigit() and int(p) < 256 for p in parts)


class _Address:
    """The collector's address, resolved once without ever blocking the process."""

    __slots__ = ("_done", "_host", "_port", "value")

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        # (family name, sockaddr) once known; False once resolution failed for good.
        self.value: tuple[str, tuple[Any, ...]] | bool | None = None
        self._done = _thread.allocate_lock()
        if host == "localhost" or _is_ipv4(host):
            # IPv4 first, as the statsd client does: in containers `localhost` can resolve
            # to ::1 while the collector listens on 127.0.0.1.
            self.value = ("AF_INET", ("127.0.0.1" if host == "localhost" else host, port))
        elif ":" in host:
            self.value = ("AF_INET6", (host, port))
        else:
            self.start()

    def start(self) -> None:
        self._done = _thread.allocate_lock()
        self._done.acquire()
        # A plain _thread (no `threading` import): it lives exactly as long as the lookup.
        _thread.start_new_thread(self._resolve, ())

    def _resolve(self) -> None:
        try:
            import _socket

            result: tuple[str, tuple[Any, ...]] | bool = False
            for family in ("AF_INET", "AF_INET6"):
                try:
                    infos = _socket.getaddrinfo(
                        self._host, self._port, getattr(_socket, family), _socket.SOCK_DGRAM
                    )
                except OSError:
                    continue
                if infos:
                    result = (family, infos[0][4])
                    break
            self.value = result
        except Exception:  # a thread of ours must never print a traceback into the process
            self.value = False
        finally:
            self._done.release()

    def get(self, wait: float) -> tuple[str, tuple[Any, ...]] | None:
        """The address if known, waiting at most ``wait`` seconds; None if not (yet)."""
        if self.value is None and wait > 0 and self._done.acquire(timeout=wait):
            self._done.release()
        value = self.value
        return value if isinstance(value, tuple) else None

    def after_fork(self) -> None:
        # The resolving thread did not survive the fork: resolve again in the child.
        if self.value is None:
            self.start()


class _Reporter:
    """Everything one activation remembers. All methods are called under ``lock``."""

    def __init__(self, cfg: ReporterConfig) -> None:
        self.config = cfg
        self.baseline: set[str] = set()
        self.decided: set[str] = set()  # top-level names already classified (sent or not)
        self.candidates: set[str] = set()  # seen by the observer, not yet classified
        self.outbox: list[str] = []  # lines waiting for the address
        self.process_counted = False
        self.distributions_sent: set[str] = set()
        self.classifier = packages.Classifier(count_local=cfg.count_local)
        self.lock = _thread.allocate_lock()
        self.address = _Address(cfg.host, cfg.port)
        self.sock: Any = None
        self.snapshot_baseline()

    def snapshot_baseline(self) -> None:
        self.baseline.update(
            name.partition(".")[0] for name in list(sys.modules) if type(name) is str
        )

    def debug(self, message: str) -> None:
        if self.config.debug:
            try:
                sys.stderr.write(f"popularity-contest: {message}\n")
            except Exception:  # stderr closed or replaced: diagnostics are best effort
                pass

    # -- deciding -------------------------------------------------------------------
    def lines_for(self, names: Iterable[str], modules: Mapping[str, object]) -> list[str]:
        """Classify names not decided yet; the statsd lines for those that count."""
        cfg = self.config
        lines: list[str] = []
        for name in sorted(names):
            if name in self.decided:
                continue
            self.decided.add(name)
            if packages.top_level(name) != name:
                continue
            found = self.classifier.classify(name, modules)
            if found is None:
                continue
            kind, dist = found
            if wire.is_safe_component(name):
                user_site = kind == packages.USER
                lines.append(
                    wire.counter_line(wire.package_name(cfg.prefix, name, user_site=user_site))
                )
            if (
                cfg.count_distributions
                and dist.name not in self.distributions_sent
                and wire.is_safe_component(dist.name)
            ):
                self.distributions_sent.add(dist.name)
                lines.append(
                    wire.counter_line(f"{wire.sibling(cfg.prefix, LEAF_LIBRARY_USED)}.{dist.name}")
                )
        return lines

    def settle(self) -> None:
        """Classify the observed names whose modules are now in ``sys.modules``."""
        modules = sys.modules
        ready = [name for name in self.candidates if name in modules]
        if ready:
            self.candidates.difference_update(ready)
            self.emit(self.lines_for(ready, modules), wait=0.0)

    def sweep(self, wait: float) -> None:
        """Classify every new top-level name in ``sys.modules`` and send (exit, cell end)."""
        modules = sys.modules
        names = {name.partition(".")[0] for name in list(modules) if type(name) is str}
        names.difference_update(self.baseline)
        self.candidates.difference_update(names)
        self.emit(self.lines_for(names, modules), wait=wait, final=wait > 0)

    # -- sending ----------------------------------------------------------------------
    def emit(self, lines: list[str], wait: float, final: bool = False) -> None:
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

    def send(self, address: tuple[str, tuple[Any, ...]], datagrams: list[bytes]) -> None:
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
_state: _Reporter | None = globals().get("_state")


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
                state.candidates.add(top)
            if state.candidates and state.lock.acquire(False):
                try:
                    state.settle()
                finally:
                    state.lock.release()
        except Exception as error:
            state.debug(f"observer: {error!r}")

    def invalidate_caches(self) -> None:
        """Nothing cached here; ``importlib.invalidate_caches`` calls every finder."""


_observer: _ImportObserver = globals().get("_observer") or _ImportObserver()


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
        state.process_counted = True
        state.sock = None  # the parent's socket stays the parent's
        state.address.after_fork()
    except Exception as error:
        state.debug(f"fork: {error!r}")


_fork_hook_registered: bool = globals().get("_fork_hook_registered", False)


def _hook_ipython() -> None:
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    events = getattr(shell, "events", None)
    if events is not None:
        events.register("post_run_cell", _after_cell)


def setup_reporter(environ: Mapping[str, str] | None = None) -> bool:
    """Activate reporting in this process (once); True if it is active afterwards.

    ``environ`` defaults to ``os.environ``. Importing :mod:`popularity_contest.reporter`
    calls it; importing this module does not.
    """
    global _state, _fork_hook_registered  # noqa: PLW0603 - one activation per process
    if _state is not None:
        return True
    cfg = _config.reporter_config(environ)
    if cfg.disabled:
        if cfg.debug and cfg.problem:
            sys.stderr.write(f"popularity-contest: not reporting: {cfg.problem}\n")
        return False
    _state = state = _Reporter(cfg)
    if cfg.eager:
        sys.meta_path.insert(0, _observer)
        _hook_ipython()
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
    while _observer in sys.meta_path:
        sys.meta_path.remove(_observer)
    shell_events = getattr(sys.modules.get("IPython"), "get_ipython", None)
    try:
        shell = shell_events() if callable(shell_events) else None
        if shell is not None:
            shell.events.unregister("post_run_cell", _after_cell)
    except ValueError:  # it was not registered
        pass
    state.close()


def is_active() -> bool:
    return _state is not None


def get_used_packages(
    initial_modules: Iterable[object],
    current_modules: Iterable[object],
    *,
    modules: Mapping[str, object] | None = None,
    count_local: bool = False,
) -> dict[str, str]:
    """The packages a process would report, computed without exiting.

    Returns ``{package: kind}`` (kind ``"site"`` or ``"user"``) for the top-level names in
    ``current_modules`` that are not in ``initial_modules`` and count (see
    :mod:`popularity_contest.inprocess.classify`). ``modules`` maps names to module objects
    (default ``sys.modules``).
    """
    classifier = packages.Classifier(count_local=count_local)
    found: dict[str, str] = {}
    for name in sorted(packages.new_top_level(initial_modules, current_modules)):
        result = classifier.classify(name, modules)
        if result is not None:
            found[name] = result[0]
    return found


def get_used_libraries(
    initial_modules: Iterable[object],
    current_modules: Iterable[object],
    *,
    modules: Mapping[str, object] | None = None,
) -> set[str]:
    """Normalised names of the distributions providing the packages reported."""
    classifier = packages.Classifier()
    return {
        result[1].name
        for name in packages.new_top_level(initial_modules, current_modules)
        if (result := classifier.classify(name, modules)) is not None
    }
