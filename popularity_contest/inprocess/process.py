"""What kind of program this process is, its IPython shell, and the collector's address.

Plumbing rules (documented in ``docs/concepts/what-is-counted.md``):

* ``PLUMBING`` programs never activate the reporter: the Jupyter server and its launchers
  (``jupyter``, ``jupyter-lab``, ``jupyter-notebook``, ``jupyter-server``,
  ``jupyterhub-singleuser``, ``jupyterhub``), the Jupyter console frontends, ``pip`` and
  ``conda``. They run no user code: what they import is the platform, not what users use,
  and they are not counted as processes either.
* ``SHELL`` programs (``ipython``, ``python -m IPython``, ``python -m ipykernel_launcher``,
  ``python -m ipykernel``) start an IPython shell: what they import before the user's code
  runs is part of the snapshot (see :func:`user_code_running`).

The program is read from ``sys.orig_argv`` (the interpreter's own command line: the module
after ``-m``, or the script's file name without ``.py`` and version digits), so it is known
when the ``.pth`` runs, before ``__main__`` exists. Everything here reads objects without
running their attribute hooks. Standard library only.
"""

import _thread
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType
    from typing import Any

PLUMBING = "plumbing"
SHELL = "shell"

_PLUMBING_SCRIPTS = frozenset(
    {
        "jupyter",
        "jupyter-lab",
        "jupyter-labhub",
        "jupyter-notebook",
        "jupyter-server",
        "jupyter-console",
        "jupyter-qtconsole",
        "jupyterhub",
        "jupyterhub-singleuser",
        "pip",
        "conda",
        "mamba",
    }
)
_PLUMBING_MODULES = frozenset(
    {
        "jupyter",
        "jupyter_core.command",
        "jupyterlab",
        "jupyterlab.labapp",
        "notebook",
        "jupyter_server",
        "jupyter_console",
        "jupyterhub",
        "jupyterhub.singleuser",
        "pip",
        "conda",
    }
)
_SHELL_SCRIPTS = frozenset({"ipython", "ipykernel_launcher"})
_SHELL_MODULES = frozenset({"IPython", "ipykernel", "ipykernel_launcher", "ipykernel.kernelapp"})
_OPTIONS_WITH_VALUE = frozenset({"-W", "-X", "--check-hash-based-pycs"})


def main_program(argv: "list[str]") -> "tuple[str, str] | None":
    """``("module", name)`` for ``python -m name``, ``("script", stem)`` for a script (file
    name without directory, ``.py``, ``-script.py`` or trailing version digits), else None."""
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "-m" and i + 1 < len(argv):
            return "module", argv[i + 1]
        if arg.startswith("-m") and len(arg) > 2:
            return "module", arg[2:]
        if arg == "-" or arg.startswith("-c"):
            return None
        if arg.startswith("-"):
            i += 2 if arg in _OPTIONS_WITH_VALUE else 1
            continue
        stem = os.path.basename(arg)
        for suffix in ("-script.py", ".py", ".exe"):
            stem = stem.removesuffix(suffix)
        return "script", stem.rstrip("0123456789.") or stem
    return None


def program_kind(argv: "list[str] | None" = None) -> "str | None":
    """``PLUMBING``, ``SHELL`` or None (anything else), from the command line."""
    if argv is None:
        argv = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
    found = main_program(argv)
    if found is None:
        return None
    kind, name = found
    if kind == "module":
        if name in _PLUMBING_MODULES:
            return PLUMBING
        return SHELL if name in _SHELL_MODULES else None
    if name in _PLUMBING_SCRIPTS:
        return PLUMBING
    return SHELL if name in _SHELL_SCRIPTS else None


def ipython_shell() -> object:
    """The IPython shell of this process once it exists (``InteractiveShell._instance``),
    read from the module's and the class's own dictionaries; else None."""
    module = sys.modules.get("IPython.core.interactiveshell")
    if module is None:
        return None
    try:
        cls = object.__getattribute__(module, "__dict__").get("InteractiveShell")
        if not isinstance(cls, type):
            return None
        return type.__getattribute__(cls, "__dict__").get("_instance")
    except Exception:  # an odd module in that place: no shell we can use
        return None


#: How many frames ``user_code_running`` looks at, from the import upwards.
MAX_FRAMES = 300


def user_code_running() -> bool:
    """True if code running in the IPython shell's user namespace (a cell, ``-c``, a script
    run by IPython, a startup file of the profile) is on the stack of this import."""
    shell = ipython_shell()
    if shell is None:
        return False
    try:  # `_user_ns` behind a property in IPython 8.x and 9, a plain attribute before
        attributes = object.__getattribute__(shell, "__dict__")
        namespaces = [attributes.get("_user_ns"), attributes.get("user_ns")]
        module = attributes.get("user_module")
        if module is not None:
            namespaces.append(object.__getattribute__(module, "__dict__"))
    except Exception:  # not a shell object we know
        return False
    wanted = {id(n) for n in namespaces if type(n) is dict}
    if not wanted:
        return False
    frame: FrameType | None = sys._getframe(1)
    for _ in range(MAX_FRAMES):
        if frame is None:
            return False
        if id(frame.f_globals) in wanted:
            return True
        frame = frame.f_back
    return False


_IPV4_PARTS = 4


def _is_ipv4(host: str) -> bool:
    parts = host.split(".")
    return len(parts) == _IPV4_PARTS and all(p.isdigit() and int(p) < 256 for p in parts)


class Address:
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

    def get(self, wait: float) -> "tuple[str, tuple[Any, ...]] | None":
        """The address if known, waiting at most ``wait`` seconds; None if not (yet)."""
        if self.value is None and wait > 0 and self._done.acquire(timeout=wait):
            self._done.release()
        value = self.value
        return value if isinstance(value, tuple) else None

    def after_fork(self) -> None:
        # The resolving thread did not survive the fork: resolve again in the child.
        if self.value is None:
            self.start()
