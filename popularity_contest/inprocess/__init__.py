"""What runs inside users' processes, and the one module loaded to activate reporting.

Standard library only; never raises, never prints. Importing this package (or any module of
it) activates nothing: :mod:`popularity_contest.reporter` is the one module whose import
switches reporting on, by calling :func:`setup_reporter` from here. The start-up code lives
in this ``__init__`` because each module imported at activation costs ~0.33 M instructions
(finder, ``.pyc``, module object) in every Python process of an environment; ``settings``,
``process``, ``lines`` and ``runtime`` re-export their parts of it under their old names.
Loaded only when needed: ``classify`` (which imported names count; ``layouts`` holds its
slow paths) and ``direct`` (the import hook of ``PYTHON_POPCONTEST_COUNT_DIRECT``). A test
checks that these modules import only the standard library and each other.

Count the packages this process imports, privately, once each, without harming it.

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

# `typing` and `collections.abc` are not loaded at start-up: only mypy sees these.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from types import FrameType
    from typing import Any

    from popularity_contest.inprocess.classify import Classifier
    from popularity_contest.inprocess.direct import ImportHook

# The statsd leaves of popularity_contest.names, copied so that activation does not import
# one more module; tests/unit/test_wire.py checks that they are the same.
LEAF_PROCESSES_REPORTED = "processes_reported"
LEAF_USER_IMPORTED_PACKAGE = "user_imported_package"
LEAF_LIBRARY_USED = "library_used"
LEAF_DIRECTLY_IMPORTED_PACKAGE = "directly_imported_package"
LEAF_DIRECTLY_IMPORTED_USER_PACKAGE = "directly_imported_user_package"


# -- settings: every environment variable the reporter reads ------------------------------
ENV_PREFIX = "PYTHON_POPCONTEST_"

HOST = ENV_PREFIX + "STATSD_HOST"
PORT = ENV_PREFIX + "STATSD_PORT"
PREFIX = ENV_PREFIX + "STATSD_PREFIX"
DISABLE = ENV_PREFIX + "DISABLE"
DEBUG = ENV_PREFIX + "DEBUG"
MAX_DATAGRAM = ENV_PREFIX + "MAX_DATAGRAM"
EAGER = ENV_PREFIX + "EAGER"
COUNT_DISTRIBUTIONS = ENV_PREFIX + "COUNT_DISTRIBUTIONS"
COUNT_LOCAL = ENV_PREFIX + "COUNT_LOCAL"
COUNT_DIRECT = ENV_PREFIX + "COUNT_DIRECT"
#: Set by the reporter itself (``<pid>:<package>,...``): what this process already sent, for
#: an image that replaces it with ``exec`` (same pid). Never set it yourself.
COUNTED = ENV_PREFIX + "COUNTED"

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 8125
DEFAULT_PREFIX = "python_popcon.imported_package"  # names.DEFAULT_PREFIX
# 512 bytes fits any network path without fragmentation (it is also what the `statsd`
# package's pipeline uses); 65,000 is just under the largest UDP payload.
DEFAULT_MAX_DATAGRAM = 512
MIN_MAX_DATAGRAM = 64
MAX_MAX_DATAGRAM = 65000
MAX_HOST_LENGTH = 253

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


def flag(environ: "Mapping[str, str]", name: str, default: bool) -> bool:
    """A yes/no variable: ``1 true yes on`` or ``0 false no off`` (any case), else ``default``."""
    value = environ.get(name)
    if value is None:
        return default
    value = value.strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    return default


def _valid_host(host: str) -> bool:
    # Host names and IP literals only: ASCII letters, digits, '.', '-', ':' (IPv6) and '_'.
    # Anything else (spaces, control bytes, non-ASCII, '%' zone ids, brackets) is refused
    # rather than handed to the resolver.
    if not host or len(host) > MAX_HOST_LENGTH or not host.isascii():
        return False
    return all(c.isalnum() or c in ".-:_" for c in host)


class ReporterConfig:
    """The reporter's settings, as read from the environment."""

    __slots__ = (
        "count_direct",
        "count_distributions",
        "count_local",
        "debug",
        "disabled",
        "eager",
        "host",
        "max_datagram",
        "port",
        "prefix",
        "problem",
    )

    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        prefix: str = DEFAULT_PREFIX,
        max_datagram: int = DEFAULT_MAX_DATAGRAM,
        eager: bool = True,
        count_distributions: bool = False,
        count_local: bool = False,
        count_direct: bool = False,
        debug: bool = False,
        disabled: bool = False,
        problem: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.prefix = prefix
        self.max_datagram = max_datagram
        self.eager = eager
        self.count_distributions = count_distributions
        self.count_local = count_local
        #: Also count the packages the process's own code imports (issue 15).
        self.count_direct = count_direct
        self.debug = debug
        #: True when reporting is off, by choice (``disabled`` without ``problem``) or
        #: because a setting is unusable (``problem`` says which).
        self.disabled = disabled
        self.problem = problem

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"ReporterConfig({fields})"

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}


def reporter_config(environ: "Mapping[str, str] | None" = None) -> ReporterConfig:
    """Read the reporter's configuration; never raises."""
    env = os.environ if environ is None else environ
    debug = flag(env, DEBUG, False)
    disabled = flag(env, DISABLE, False)
    problem = None

    host = env.get(HOST, DEFAULT_HOST).strip()
    if not _valid_host(host):
        problem = f"{HOST} is not a host name or IP address"
        host = DEFAULT_HOST

    port_text = env.get(PORT, str(DEFAULT_PORT)).strip()
    port = DEFAULT_PORT
    if port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536:
        port = int(port_text)
    else:
        problem = problem or f"{PORT} is not a port number (1-65535)"

    prefix = env.get(PREFIX, DEFAULT_PREFIX).strip()
    if not is_safe_prefix(prefix) or "." not in prefix:
        # Two components at least: the counters beside the last one (processes_reported)
        # must never look like a package under the prefix.
        problem = problem or (
            f"{PREFIX} must be two or more dot-separated components of letters, digits, '_' and '-'"
        )
        prefix = DEFAULT_PREFIX

    size_text = env.get(MAX_DATAGRAM, str(DEFAULT_MAX_DATAGRAM)).strip()
    max_datagram = DEFAULT_MAX_DATAGRAM
    if size_text.isascii() and size_text.isdigit():
        max_datagram = min(max(int(size_text), MIN_MAX_DATAGRAM), MAX_MAX_DATAGRAM)
    else:
        problem = problem or f"{MAX_DATAGRAM} is not a number of bytes"

    return ReporterConfig(
        host=host,
        port=port,
        prefix=prefix,
        max_datagram=max_datagram,
        eager=flag(env, EAGER, True),
        count_distributions=flag(env, COUNT_DISTRIBUTIONS, False),
        count_local=flag(env, COUNT_LOCAL, False),
        count_direct=flag(env, COUNT_DIRECT, False),
        debug=debug,
        disabled=disabled or problem is not None,
        problem=problem,
    )


# -- the statsd line format -----------------------------------------------------------
MAX_COMPONENT_LENGTH = 100
MAX_PREFIX_LENGTH = 200
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def is_safe_component(text: object) -> bool:
    """True if ``text`` can be one dot-separated component of a statsd name."""
    return type(text) is str and 0 < len(text) <= MAX_COMPONENT_LENGTH and _SAFE.issuperset(text)


def is_safe_prefix(text: object) -> bool:
    """True if ``text`` is one or more safe components separated by single dots."""
    if type(text) is not str or not 0 < len(text) <= MAX_PREFIX_LENGTH:
        return False
    return all(is_safe_component(part) for part in text.split("."))


def sibling(prefix: str, leaf: str) -> str:
    """Replace the prefix's last component with ``leaf``.

    ``python_popcon.imported_package`` -> ``python_popcon.processes_reported``;
    ``python_popcon.hub.ns.imported_package`` -> ``python_popcon.hub.ns.processes_reported``.
    A one-component prefix gets ``leaf`` appended instead. Either way the result can never
    be mistaken for ``<prefix>.<package>`` by a glob that matches one component.
    """
    parent, dot, _last = prefix.rpartition(".")
    return f"{parent}.{leaf}" if dot else f"{prefix}.{leaf}"


def package_name(prefix: str, package: str, *, user_site: bool = False) -> str:
    """The counter name for a package: ``<prefix>.<package>``, or, for one from the user
    site directory, ``user_imported_package`` beside the prefix (see ``sibling``)."""
    stem = sibling(prefix, LEAF_USER_IMPORTED_PACKAGE) if user_site else prefix
    return f"{stem}.{package}"


def counter_line(name: str, value: int = 1) -> str:
    """One statsd counter increment, exactly as ``statsd.StatsClient.incr`` writes it."""
    return f"{name}:{value}|c"


def pack(lines: "Iterable[str]", max_size: int) -> list[bytes]:
    """Join lines into datagrams, each kept below ``max_size`` bytes where a line allows.

    Same packing as ``statsd``'s pipeline (``len(line) + len(datagram) + 1 >= max_size``
    starts a new datagram; a single longer line travels alone). Lines are ASCII by
    construction (``is_safe_component``), so characters and bytes agree.
    """
    datagrams: list[bytes] = []
    current = ""
    for line in lines:
        if not current:
            current = line
        elif len(line) + len(current) + 1 >= max_size:
            datagrams.append(current.encode("ascii"))
            current = line
        else:
            current += "\n" + line
    if current:
        datagrams.append(current.encode("ascii"))
    return datagrams


# -- what kind of program this is, its IPython shell, the collector's address ----------
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


# -- the reporter ----------------------------------------------------------------------
_STANDARD = sys.stdlib_module_names


def _top_level_names(modules: "Iterable[object]") -> "set[str]":
    """The keys of ``modules`` that could count: top-level names (identifiers: no ``.``),
    filtered in C. A top-level name whose module is absent never counts, so dotted keys
    are skipped rather than split. Keys of another type, or ``str`` subclasses (whose
    hooks must never run), are left out."""
    keys: list[Any] = list(modules)
    try:
        names: list[str] = list(filter(str.isidentifier, keys))
    except TypeError:  # a key that is not a str at all
        names = [name for name in keys if type(name) is str and name.isidentifier()]
    if set(map(type, names)) - {str}:
        names = [name for name in names if type(name) is str]  # no subclass is hashed
    return set(names)


#: How many settles a candidate may be missing from sys.modules before only the sweep
#: looks for it (a failed import: `import msvcrt` in a try).
MISSING_CHECKS = 2

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
        #: Candidates found missing from sys.modules, and how often: a failed import
        #: (`import msvcrt` in a try) is left to the sweep instead of being checked at
        #: every later import (pandas: ~600 imports after its failed ones).
        self.missing: dict[str, int] = {}
        self.late: set[str] = set()  # candidates missing MISSING_CHECKS times
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
        self.baseline.update(_top_level_names(sys.modules))

    def inherit_exec_marker(self) -> None:
        """After ``exec`` in the same process: what the previous image sent stays sent."""
        pid, _, names = os.environ.get(COUNTED, "").partition(":")
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
        shell = ipython_shell()
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
        if user_code_running():
            self.starting_shell = False
            self.snapshot_baseline()
            self.candidates.difference_update(self.baseline)
            self.late.difference_update(self.baseline)
            self.watch_shell()
            self.debug("IPython started: its imports are part of the snapshot")

    # -- deciding -------------------------------------------------------------------
    def lines_for(self, names: "Iterable[str]", modules: "Mapping[str, object]") -> "list[str]":
        """Classify names not decided yet; the statsd lines for those that count."""
        lines: list[str] = []
        for name in sorted(names):
            if name in self.decided:
                continue
            if _never_counts(name) or _placeless(modules.get(name)):
                self.decided.add(name)  # classify's first tests, without loading classify
                continue
            self.decided.add(name)
            try:  # one odd module must never cost the others
                lines.extend(self.lines_for_one(name, modules))
            except Exception as error:
                self.debug(f"{name}: {error!r}")
        return lines

    def lines_for_one(self, name: str, modules: "Mapping[str, object]") -> "list[str]":
        prefix = self.config.prefix
        if self._classifier is None and not self.config.count_distributions:
            quick = _quick_kind(name, modules.get(name))
            if quick is not None:
                self.sent.append(name)
                self.sent_kind[name] = quick
                user = quick == "user"
                return [counter_line(package_name(prefix, name, user_site=user))]
        from popularity_contest.inprocess.classify import USER, top_level

        if top_level(name) != name:
            return []
        found = self.classifier.classify(name, modules)
        if found is None or not is_safe_component(name):
            return []
        kind, dist = found
        lines = [counter_line(package_name(prefix, name, user_site=kind == USER))]
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
            if owner and owner not in self.distributions_sent and is_safe_component(owner):
                self.distributions_sent.add(owner)
                name = f"{sibling(self.config.prefix, LEAF_LIBRARY_USED)}.{owner}"
                lines.append(counter_line(name))
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
                lines.append(counter_line(f"{sibling(self.config.prefix, leaf)}.{name}"))
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
        if self.late:
            arrived = [name for name in self.late if name in modules]
            self.late.difference_update(arrived)
            self.candidates.update(arrived)
        ready = [name for name in self.candidates if name in modules]
        if len(ready) < len(self.candidates):
            # Missing twice: a failed import, or a module that enters sys.modules only after
            # its own imports (a single-phase extension module). It waits in `late`, checked
            # more cheaply at every import, and the sweep decides it at the latest.
            missing = self.missing
            for name in self.candidates.difference(ready):
                missing[name] = count = missing.get(name, 0) + 1
                if count >= MISSING_CHECKS:
                    self.candidates.discard(name)
                    self.late.add(name)
        if ready:
            self.candidates.difference_update(ready)
            self.emit(self.lines_for(ready, modules), wait=0.0)

    def sweep(self, wait: float) -> None:
        """Classify every new top-level name in ``sys.modules`` and send (exit, cell end)."""
        modules = sys.modules
        if self.starting_shell:
            self.snapshot_baseline()  # the shell never ran user code that imported
        names = _top_level_names(modules)
        names.difference_update(self.baseline, self.decided)
        self.candidates.difference_update(names)
        self.late.difference_update(names)
        lines = self.lines_for(names, modules)
        lines.extend(self.namespace_lines(modules))
        self.emit(lines, wait=wait, final=wait > 0)

    # -- sending ----------------------------------------------------------------------
    def emit(self, lines: "list[str]", wait: float, final: bool = False) -> None:
        if self.direct_pending:
            lines.extend(self.direct_lines())
        if not self.process_counted and (lines or final):
            self.process_counted = True
            name = sibling(self.config.prefix, LEAF_PROCESSES_REPORTED)
            lines.insert(0, counter_line(name))
        self.outbox.extend(lines)
        if not self.outbox:
            return
        address = self.address.get(wait)
        if address is None:
            if final:
                self.debug("collector address unknown: report dropped")
            return
        datagrams = pack(self.outbox, self.config.max_datagram)
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
        if os.environ.get(COUNTED) != text:
            os.environ[COUNTED] = text

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


# -- the common case of classification, without loading classify ---------------------
# Loading `classify` costs ~2 M instructions (a third of the reporter's cost on a small
# process). Most processes import only packages named like their distribution (six,
# numpy, requests), which this narrow copy of classify's first rule decides: a regular
# package or module file called <name>, directly in a site directory (as written), whose
# first `<name>-*.dist-info`/`.egg-info` entry (classify's order) is named <name> and has no
# direct_url.json; and the commonest case of its second rule (`_listed_by_one`: dateutil,
# which pandas imports). Anything else returns None and classify decides, so the answers are
# classify's (tests/integration/test_reporter*.py cover both paths).
_META = (".dist-info", ".egg-info")
_quick_sites: "dict[str, str] | None" = None


def _site_kinds() -> "dict[str, str]":
    global _quick_sites  # noqa: PLW0603 - computed once per process
    if _quick_sites is None:
        found: dict[str, str] = {}
        site = sys.modules.get("site")
        if site is not None:
            try:
                for path in site.getsitepackages():
                    found[os.path.normcase(os.path.abspath(path))] = "site"
                if site.ENABLE_USER_SITE:
                    user = site.getusersitepackages()
                    found[os.path.normcase(os.path.abspath(user))] = "user"
            except Exception:  # a replaced `site`: classify has a fallback
                found = {}
        _quick_sites = found
    return _quick_sites


def _listing(path: str) -> "Iterable[str]":
    """The entries of directory ``path`` (classify uses it too): the import system's own
    up-to-date listing when it has one (``FileFinder._path_cache``, refreshed whenever the
    directory's mtime changes, so the imports of this process already paid for it), else
    ``os.listdir``."""
    finder = sys.path_importer_cache.get(path)
    if finder is not None:
        try:
            state = object.__getattribute__(finder, "__dict__")
            cached = state.get("_path_cache")
            if (
                type(cached) is set
                and cached
                and state.get("_path_mtime") == os.stat(path).st_mtime
            ):
                return cached
        except Exception:  # not a FileFinder we know, or the directory is gone
            pass
    try:
        return os.listdir(path)
    except OSError:
        return []


def _quick_kind(name: str, module: object) -> "str | None":
    """``"site"``/``"user"`` when ``name`` surely counts by classify's rules; else None."""
    if (
        _never_counts(name)
        or not name.isalnum()  # no '_': its dist-info may spell it with '-' or '.'
        or not is_safe_component(name)
    ):
        return None
    site = _site_of(name, module)
    kind = None if site is None else _site_kinds().get(site)
    texts = None if site is None or kind is None else _entries_text(site)
    if site is None or texts is None:
        return None
    joined, text = texts
    # 1. `<name>-*.dist-info`/`.egg-info`, the first in classify's (the listing's) order.
    entry = _named_entry(joined, text, name.lower())
    if entry is not None:
        path = os.path.join(site, entry)
        if os.path.exists(os.path.join(path, "direct_url.json")) or not os.path.isdir(path):
            return None  # maybe local, or a listing older than the directory: classify decides
        return kind
    # 2. No distribution is named like it: one whose name contains it may list it.
    return kind if _listed_by_one(site, joined, text, name) else None


def _site_of(name: str, module: object) -> "str | None":
    """The directory holding ``module`` when it really is ``name`` (``<dir>/<name>/__init__.*``
    or ``<dir>/<name>.*``), normalised as ``_site_kinds`` keys are; read from ``__dict__``."""
    dicts = _module_dicts(module)
    if dicts is None:
        return None
    namespace, spec = dicts
    origin = None if spec is None else spec.get("origin")
    if type(origin) is not str or origin in ("built-in", "frozen", "namespace"):
        origin = namespace.get("__file__")
        if type(origin) is not str:
            return None
    directory, filename = os.path.split(origin)
    if filename.startswith("__init__."):
        directory, filename = os.path.split(directory)
        if filename != name:
            return None
    elif filename.split(".", 1)[0] != name:
        return None
    return os.path.normcase(os.path.abspath(directory))


def _named_entry(joined: str, text: str, key: str) -> "str | None":
    """The first metadata entry (listing order, as classify reads it) of the distribution
    whose normalised name is ``key`` (lower case, no separator), or None."""
    start = text.find(f"/{key}-")
    while start >= 0:
        end = text.index("/", start + 1)
        entry = joined[start + 1 : end]
        start = text.find(f"/{key}-", end)
        if not entry.endswith(_META):
            continue
        # classify's Distribution name, normalised (key has no separator to fold).
        stem = entry.rsplit(".", 1)[0]
        if entry.endswith(".dist-info"):
            part = stem.rpartition("-")[0] or stem
        else:
            part = stem.split("-", 1)[0]
        if part.lower() == key:
            return entry
    return None


def _never_counts(name: str) -> bool:
    """True for a top-level name classify's ``top_level`` refuses: private (``_*``), not an
    ASCII identifier, standard library or built in."""
    return (
        not name
        or name[0] == "_"
        or name in _STANDARD
        or not name.isascii()
        or not name.isidentifier()
        or name in sys.builtin_module_names
    )


def _module_dicts(module: object) -> "tuple[dict[str, Any], dict[str, Any] | None] | None":
    """``(namespace, spec's namespace)`` of a module, read as classify reads them: exact
    dicts only (a subclass's ``get`` would be user code; a class's mapping proxy is not
    read). None when the module's namespace is not one; the spec's is None when there is no
    spec or its namespace is not one."""
    try:
        namespace = object.__getattribute__(module, "__dict__")
    except Exception:  # no __dict__ (an odd object in sys.modules)
        return None
    if type(namespace) is not dict:
        return None
    spec = namespace.get("__spec__")
    try:
        spec_dict = None if spec is None else object.__getattribute__(spec, "__dict__")
    except Exception:  # a spec without __dict__: ignored, as classify does
        spec_dict = None
    return namespace, (spec_dict if type(spec_dict) is dict else None)


def _placeless(module: object) -> bool:
    """True for a module classify can place nowhere, so never counts: no origin, no
    ``__file__``, no search locations (the ``cython_runtime`` module Cython extensions
    create), or a namespace classify does not read (no ``__dict__``, a class's mapping
    proxy, a ``dict`` subclass)."""
    dicts = _module_dicts(module)
    if dicts is None:
        return True
    namespace, spec = dicts
    if spec is not None and (
        type(spec.get("origin")) is str or spec.get("submodule_search_locations") is not None
    ):
        return False
    return type(namespace.get("__file__")) is not str


#: Per site directory: (the listing it was made from, "/"-joined entries, lower case).
_texts: "dict[str, tuple[object, str, str]]" = {}


def _entries_text(site: str) -> "tuple[str, str] | None":
    """The entries of ``site`` as one ``/``-separated text (``/`` first and last; it is the
    one character no entry can hold) and its lower case, searched in C instead of looping
    over ~1000 entries in Python; kept while the import system's listing is the same
    object. None if lower case would shift positions (a character whose lower case is
    longer)."""
    listing = _listing(site)
    cached = _texts.get(site)
    if cached is not None and cached[0] is listing:
        return cached[1], cached[2]
    joined = "/" + "/".join(listing) + "/"
    text = joined.lower()
    if len(text) != len(joined):
        return None
    _texts[site] = (listing, joined, text)
    return joined, text


def _listed_by_one(site: str, joined: str, text: str, name: str) -> bool:
    """Classify's second rule, narrowed (``dateutil`` -> ``python_dateutil``): exactly one
    entry of ``site`` is metadata whose name contains ``name`` (any case); it is a
    ``.dist-info`` whose ``top_level.txt`` lists ``name`` (or, without names there, whose
    ``RECORD`` holds a file of ``<name>/``) and that has no ``direct_url.json``. Anything
    else (two candidates, an egg, a name only its other files show) is False, and classify
    decides. Called only when no distribution is named like ``name``."""
    key = name.lower()
    found = ""
    start = text.find(key)
    while start >= 0:
        begin = text.rfind("/", 0, start) + 1
        end = text.index("/", start)
        entry = joined[begin:end]
        start = text.find(key, end)
        if not entry.endswith(_META):
            continue
        if entry.endswith(".egg-info"):
            return False  # an egg's name is spelled differently: classify decides
        stem = entry.rsplit(".", 1)[0]
        if key in (stem.rpartition("-")[0] or stem).lower():
            if found:
                return False  # two candidates: classify's order decides
            found = entry
    if not found:
        return False
    path = os.path.join(site, found)
    wanted = name.encode()
    names = _read(os.path.join(path, "top_level.txt")).split()
    if names:  # classify reads top_level.txt first, RECORD only without names there
        listed = wanted in names
    else:  # a line `<name>/...` of RECORD: a file of package <name>
        record = _read(os.path.join(path, "RECORD"))
        listed = record.startswith(wanted + b"/") or b"\n" + wanted + b"/" in record
    return listed and not os.path.exists(os.path.join(path, "direct_url.json"))


def _read(path: str) -> bytes:
    """The first 4 MiB of a file (classify's limit), or nothing if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read(1 << 22)
    except OSError:
        return b""


# `importlib.reload` re-runs this module in the same namespace: keep an activation that
# already exists, so a reload can never activate reporting twice.
_state: "_Reporter | None" = globals().get("_state")


class _ImportObserver:
    """A ``sys.meta_path`` entry that watches imports and never finds anything."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        state = _state
        if state is None or type(fullname) is not str:
            return  # a str subclass's hooks (hash, eq, getitem) must never run here
        # Runs inside every import of the process (~600 for pandas): an error here must
        # never break it, and the common path (a submodule, a name already decided) is a
        # partition and two set look-ups.
        try:
            top = fullname.partition(".")[0]
            fresh = None
            if top not in state.baseline and top not in state.decided:
                if top in _STANDARD or top[:1] == "_":
                    # Never counts, and most new names here are these: not even a candidate.
                    # (The rest of `_never_counts` waits for `lines_for`: calling it at every
                    # new name costs 0.45 M instructions on pandas.)
                    state.decided.add(top)
                else:
                    if state.starting_shell:
                        state.end_startup_if_user_code()
                        if state.starting_shell or top in state.baseline:
                            return
                    fresh = top
                    if state.hook is not None:
                        from popularity_contest.inprocess.direct import import_module_caller

                        if import_module_caller(state.hook):
                            state.note_direct(top)
            # The module being imported is not in sys.modules yet: settle the earlier
            # candidates, then add this one for a later import (or the sweep) to decide.
            due = bool(state.candidates)
            if not due and state.late and path is None:  # at top-level imports only
                modules = sys.modules
                for name in state.late:  # a few names: failed imports, late extensions
                    if name in modules:
                        due = True
                        break
            if due and not state.starting_shell and state.lock.acquire(False):
                try:
                    state.settle()
                finally:
                    state.lock.release()
            if fresh is not None:
                state.candidates.add(fresh)
                state.missing.pop(fresh, None)
                state.late.discard(fresh)
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
        state.baseline.update(state.candidates, state.late)
        state.candidates.clear()
        state.late.clear()
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
    cfg = reporter_config(environ)
    if cfg.disabled:
        if cfg.debug and cfg.problem:
            sys.stderr.write(f"popularity-contest: not reporting: {cfg.problem}\n")
        return False
    kind = program_kind()
    if kind == PLUMBING:
        return False
    shell_exists = ipython_shell() is not None
    _state = state = _Reporter(cfg, starting_shell=kind == SHELL and not shell_exists)
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
