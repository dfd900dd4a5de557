"""``popularity-contest install|uninstall ipython|site``: the two ways to turn the reporter on.

* ``ipython`` writes a startup file into ``<prefix>/etc/ipython/startup/``. IPython adds
  ``os.path.join(sys.prefix, "etc", "ipython")`` to its configuration directories
  (``IPython.core.application.ENV_CONFIG_DIRS``), so every IPython shell and Jupyter kernel
  whose interpreter lives in that environment runs the file. IPython collects the startup
  files of *all* its directories (the profile's, this one, ``/usr/local/etc/ipython`` and
  ``/etc/ipython``) into one list sorted by full path and stops at the first file that
  raises, so ours never raises and leaves no names in the user's namespace.
* ``site`` writes a ``.pth`` file into the environment's site-packages. ``site`` executes
  its ``import`` line at start-up of every Python process of the environment, except under
  ``python -S``; the line itself skips ``python -I`` and pip's isolated builds, and it never
  raises (``site`` would print a traceback into every process, and skip the rest of the
  file).

Both files stay harmless when popularity-contest is removed: they only import it inside
``try``. Installing twice changes nothing; removing what is not there is not an error.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from popularity_contest.errors import PopconError

IPYTHON = "ipython"
SITE = "site"
METHODS = (IPYTHON, SITE)

#: ``00-`` sorts first among the startup files of its directory; docs/concepts/what-is-counted.md
#: says how IPython orders files *across* directories (by full path).
STARTUP_NAME = "00-popularity-contest.py"
#: ``site`` runs .pth files in sorted order. ``zz_`` sorts after the usual ones, so the
#: path entries they add (an editable popularity-contest included) already exist, and
#: what their import lines load is part of the reporter's snapshot, never counted.
PTH_NAME = "zz_popularity_contest.pth"

STARTUP_TEXT = """\
# Written by `popularity-contest install ipython`; `popularity-contest uninstall ipython`
# removes it. It activates popularity-contest's reporter in every IPython shell and Jupyter
# kernel of this environment (opt out with PYTHON_POPCONTEST_DISABLE=1).
#
# IPython stops running the remaining startup files once one raises, so this file never
# raises, even when popularity-contest is broken or no longer installed, and it binds no
# names in the user's namespace.
try:
    __import__("popularity_contest.reporter")
except Exception:
    pass
"""

# One line: `site` executes lines that start with "import". The guards: `python -I` means
# "leave this process alone"; pip sets PIP_BUILD_TRACKER for its build subprocesses (isolated
# builds must not load packages from the environment). The outer `try` keeps a broken or
# removed popularity-contest from printing a traceback into every process.
PTH_TEXT = (
    "import os, sys; exec("
    "'try:\\n"
    ' if not (sys.flags.isolated or os.environ.get("PIP_BUILD_TRACKER")):'
    " import popularity_contest.reporter\\n"
    "except Exception:\\n"
    " pass\\n')"
    "  # popularity-contest: `popularity-contest uninstall site` removes this file\n"
)

# Run by path with the target environment's interpreter (-I) to learn where its
# site-packages are.
_PROBE = Path(__file__).with_name("activation_probe.py")
_PROBE_TIMEOUT = 60.0


class InstallError(PopconError):
    """An expected failure: the message is one line for the user."""


@dataclass
class Environment:
    """A Python environment, identified by its prefix."""

    prefix: Path
    python: Path | None
    site_packages: Path | None
    has_ipython: bool | None = None
    has_popularity_contest: bool | None = None

    def startup_file(self) -> Path:
        return self.prefix / "etc" / "ipython" / "startup" / STARTUP_NAME

    def pth_file(self) -> Path:
        if self.site_packages is None:
            raise InstallError(f"no site-packages directory found under {self.prefix}")
        return self.site_packages / PTH_NAME

    def target(self, method: str) -> Path:
        return self.startup_file() if method == IPYTHON else self.pth_file()


@dataclass(frozen=True)
class ActivationFile:
    """One activation file of an environment, as ``installed()`` finds it."""

    method: str  # ipython or site
    path: str | None  # None: the environment has no place for it (no site-packages)
    installed: bool  # the file exists
    current: bool  # its text is what this version writes


@dataclass
class Outcome:
    """What one install or uninstall did."""

    method: str
    action: str  # created, updated, unchanged, removed, absent
    path: Path
    prefix: Path
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "method": self.method,
            "action": self.action,
            "path": str(self.path),
            "prefix": str(self.prefix),
            "notes": list(self.notes),
        }


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _find_python(prefix: Path) -> Path | None:
    candidates = (
        ["Scripts/python.exe", "python.exe"]
        if os.name == "nt"
        else [
            "bin/python3",
            "bin/python",
            *sorted(
                (os.path.relpath(p, prefix) for p in glob.glob(str(prefix / "bin/python3.*"))),
                reverse=True,
            ),
        ]
    )
    for candidate in candidates:
        path = prefix / candidate
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def _glob_site_packages(prefix: Path) -> list[Path]:
    patterns = ("Lib/site-packages",) if os.name == "nt" else ("lib/python3*/site-packages",)
    found: list[Path] = []
    for pattern in patterns:
        found.extend(Path(p) for p in sorted(glob.glob(str(prefix / pattern))))
    return [p for p in found if p.is_dir()]


def _probe(python: Path) -> dict[str, object] | None:
    try:
        done = subprocess.run(  # noqa: S603  # the environment's own interpreter, fixed script
            [str(python), "-I", str(_PROBE)],
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    try:
        data = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    return data if isinstance(data, dict) else None


def locate(prefix: str | os.PathLike[str] | None = None) -> Environment:
    """The environment at ``prefix`` (default: this interpreter's), or InstallError."""
    here = Path(sys.prefix)
    if prefix is None or _same_path(Path(prefix), here):
        purelib = sysconfig.get_path("purelib")
        return Environment(
            prefix=here,
            python=Path(sys.executable) if sys.executable else None,
            site_packages=Path(purelib) if purelib else None,
            has_ipython=importlib.util.find_spec("IPython") is not None,
            has_popularity_contest=True,
        )
    root = Path(prefix).expanduser().absolute()
    if not root.exists():
        raise InstallError(f"{root} does not exist")
    if not root.is_dir():
        raise InstallError(f"{root} is not a directory")
    python = _find_python(root)
    info = _probe(python) if python is not None else None
    if info is not None and isinstance(info.get("purelib"), str):
        return Environment(
            prefix=root,
            python=python,
            site_packages=Path(str(info["purelib"])),
            has_ipython=bool(info.get("ipython")),
            has_popularity_contest=bool(info.get("popularity_contest")),
        )
    # No interpreter we can run (another architecture, a broken venv): look for the layout.
    found = _glob_site_packages(root)
    if len(found) > 1:
        raise InstallError(
            f"{root} has several site-packages directories and its Python does not run: "
            + ", ".join(str(p) for p in found)
        )
    if not found and python is None and not (root / "pyvenv.cfg").is_file():
        raise InstallError(f"{root} is not a Python environment (no bin/python, no site-packages)")
    return Environment(prefix=root, python=python, site_packages=found[0] if found else None)


def content(method: str) -> str:
    """The exact text of the file that ``method`` installs."""
    return STARTUP_TEXT if method == IPYTHON else PTH_TEXT


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return ""  # present but unreadable: treat as different, so install rewrites it


def _os_error(action: str, path: Path, error: OSError) -> InstallError:
    reason = error.strerror or type(error).__name__
    hint = ""
    if isinstance(error, PermissionError):
        hint = " (run as the environment's owner, or choose another --prefix)"
    return InstallError(f"cannot {action} {path}: {reason}{hint}")


def _write(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``; refuse to replace a symbolic link.

    The temporary file gets an unpredictable name in the same directory and is created with
    ``O_EXCL | O_NOFOLLOW`` (``tempfile.mkstemp``), so a link planted in a directory someone
    else can write to (``install site`` as root) is never followed or overwritten.
    """
    import tempfile

    if path.is_symlink():
        raise InstallError(f"refusing to replace {path}: it is a symbolic link")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        temporary = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                os.fchmod(f.fileno(), 0o644)
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    except OSError as error:
        raise _os_error("write", path, error) from None


def _notes(env: Environment, method: str) -> list[str]:
    notes: list[str] = []
    if env.has_popularity_contest is False:
        notes.append(
            f"popularity_contest is not importable by {env.python}: the file does nothing "
            "until popularity-contest is installed in that environment"
        )
    if method == IPYTHON and env.has_ipython is False:
        notes.append("IPython is not installed in this environment yet; the file waits for it")
    return notes


def install(method: str, prefix: str | os.PathLike[str] | None = None) -> Outcome:
    """Write the activation file for ``method``; idempotent."""
    env = locate(prefix)
    path = env.target(method)
    if path.is_symlink():
        raise InstallError(f"refusing to replace {path}: it is a symbolic link")
    wanted = content(method)
    current = _read_text(path)
    if current == wanted:
        action = "unchanged"
    else:
        _write(path, wanted)
        action = "created" if current is None else "updated"
    return Outcome(method, action, path, env.prefix, _notes(env, method))


def uninstall(method: str, prefix: str | os.PathLike[str] | None = None) -> Outcome:
    """Remove the activation file for ``method``; removing an absent file is fine."""
    env = locate(prefix)
    path = env.target(method)
    try:
        path.unlink()
    except FileNotFoundError:
        return Outcome(method, "absent", path, env.prefix)
    except OSError as error:
        raise _os_error("remove", path, error) from None
    return Outcome(method, "removed", path, env.prefix)


def installed(env: Environment | None = None) -> list[ActivationFile]:
    """Each method's activation file in ``env`` (default: this interpreter's environment),
    in ``METHODS`` order."""
    env = env if env is not None else locate()
    found: list[ActivationFile] = []
    for method in METHODS:
        try:
            path = env.target(method)
        except InstallError:
            found.append(ActivationFile(method, None, installed=False, current=False))
            continue
        text = _read_text(path)
        found.append(
            ActivationFile(
                method, str(path), installed=text is not None, current=text == content(method)
            )
        )
    return found
