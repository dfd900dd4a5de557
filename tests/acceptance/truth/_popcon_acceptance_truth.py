"""The acceptance test's independent record of what each Python process imports.

Installed into the environment under test as a single-file module plus a ``.pth`` whose name
sorts before every other ``.pth`` (so it runs before popularity-contest's own), and called by
an IPython startup file whose name sorts before popularity-contest's. It shares no code
with popularity-contest: an audit hook watches ``sys.modules`` and writes, as things happen,
one line per event to a file of its own per process (``<pid>-<random>.log`` in
``$POPCON_ACCEPTANCE_TRUTH_DIR``), so a process killed with SIGKILL leaves what it had
imported up to its last import, IPython cell or fork. Without that variable it does nothing.

Lines (tab-separated):

- ``start <unix time> <pid> <ppid> <isolated flag> <repr(sys.orig_argv)>``
- ``mods <top-level names new since the last mods line>``, written before every import that
  reaches the finders, before every marker, before a fork, before ``os._exit`` and after
  each IPython cell
- ``run <event>`` when the interpreter starts user code (``cpython.run_command``,
  ``run_file``, ``run_module``, ``run_stdin``): the end of ``site`` start-up
- ``ipython`` when IPython runs its startup files; ``cell`` before the first IPython cell
- ``exec`` before ``os.exec*`` replaces the process
- ``fork <parent id> <markers seen by the parent>`` first in a forked child's file
- ``os_exit`` before ``os._exit``; ``exit`` from ``atexit`` (a normal exit)

``tests/acceptance/truth.py`` turns these into per-process imports. Every entry point
swallows its own errors: nothing here reaches the process under test.
"""

import os
import sys

RUN_EVENTS = frozenset(
    {"cpython.run_command", "cpython.run_file", "cpython.run_module", "cpython.run_stdin"}
)


class _Recorder:
    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.fd = -1
        self.ident = ""
        self.seen: set[str] = set()
        self.last_len = 0
        self.markers: list[str] = []
        self.busy = False
        self.real_os_exit = os._exit

    def open(self) -> None:
        self.ident = f"{os.getpid()}-{os.urandom(4).hex()}"
        path = os.path.join(self.directory, self.ident + ".log")
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, *fields: object) -> None:
        if self.fd >= 0:
            line = "\t".join(str(f).replace("\t", " ").replace("\n", " ") for f in fields)
            os.write(self.fd, (line + "\n").encode("utf-8", "replace"))

    def dump(self) -> None:
        modules = sys.modules
        if len(modules) == self.last_len:
            return
        self.last_len = len(modules)
        new = []
        for name in list(modules):
            top = name.partition(".")[0]
            if top not in self.seen:
                self.seen.add(top)
                new.append(top)
        if new:
            self.write("mods", " ".join(new))

    def mark(self, kind: str, *fields: object) -> None:
        self.dump()
        self.markers.append(kind)
        self.write(kind, *fields)

    def hook(self, event: str, args: tuple[object, ...]) -> None:
        if self.busy or self.fd < 0:
            return
        self.busy = True
        try:
            if event == "import":
                self.dump()
            elif event in RUN_EVENTS:
                if "run" not in self.markers:
                    self.mark("run", event)
            elif event == "os.exec":
                self.mark("exec")
        except Exception:
            pass
        finally:
            self.busy = False

    def at_exit(self) -> None:
        try:
            self.mark("exit")
        except Exception:
            pass

    def os_exit(self, code: int) -> None:
        try:
            self.mark("os_exit")
        except Exception:
            pass
        self.real_os_exit(code)

    def before_fork(self) -> None:
        try:
            self.dump()
        except Exception:
            pass

    def after_fork_in_child(self) -> None:
        try:
            parent = self.ident
            os.close(self.fd)
            self.fd = -1
            self.open()
            self.write("fork", parent, ",".join(self.markers) or "-")
        except Exception:
            pass

    def ipython_started(self) -> None:
        try:
            if self.fd < 0:
                return
            self.mark("ipython")
            shell = sys.modules["IPython"].get_ipython()
            shell.events.register("pre_run_cell", self.pre_run_cell)
            shell.events.register("post_run_cell", self.post_run_cell)
        except Exception:
            pass

    def pre_run_cell(self, *args: object) -> None:
        try:
            if "cell" not in self.markers:
                self.mark("cell")
        except Exception:
            pass

    def post_run_cell(self, *args: object) -> None:
        try:
            self.dump()
        except Exception:
            pass

    def start(self) -> None:
        self.open()
        argv = getattr(sys, "orig_argv", None) or []
        self.write(
            "start",
            repr(__import__("time").time()),
            os.getpid(),
            os.getppid(),
            int(sys.flags.isolated),
            repr(argv),
        )
        self.dump()
        sys.addaudithook(self.hook)
        __import__("atexit").register(self.at_exit)
        os.register_at_fork(before=self.before_fork, after_in_child=self.after_fork_in_child)
        os._exit = self.os_exit


_recorder = _Recorder(os.environ.get("POPCON_ACCEPTANCE_TRUTH_DIR", ""))
try:
    if _recorder.directory:
        _recorder.start()
except Exception:
    pass


def ipython_started() -> None:
    """Called by the IPython startup file: mark the shell and watch its cells."""
    _recorder.ipython_started()
