"""What counts on every real layout, in real processes sending to a real UDP socket (issue 9).

One hand-made environment per test module holds a distribution for each layout: a
namespace package shared by three distributions, Debian-style egg-info without RECORD,
a dist-info whose installer wrote no RECORD, conda's records, local installs of every kind
(directory, ``file:`` archive, VCS, PEP 660 editable, ``setup.py develop``) and a module
loaded with ``importlib.util.LazyLoader`` whose optional dependency is missing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.envkit import PY_VERSION, Env, Listener, add_dist, clean_env

ACTIVATE = "import popularity_contest.reporter\n"
PROCESS = "python_popcon.processes_reported:1|c"


def pkg(name: str) -> str:
    return f"python_popcon.imported_package.{name}:1|c"


def lib(name: str) -> str:
    return f"python_popcon.library_used.{name}:1|c"


LAZYOPT = "print('lazyopt executed', flush=True)\nimport not_installed_optional_dependency\n"


def _editable(env: Env, project: Path, name: str) -> None:
    """``pip install -e`` with setuptools >= 64 (PEP 660): module outside site-packages."""
    (project / "src" / name).mkdir(parents=True)
    (project / "src" / name / "__init__.py").write_text("")
    pth = f"__editable__.{name}-0.1.pth"
    (env.site / pth).write_text(f"{project / 'src'}\n")
    info = add_dist(
        env.site,
        name,
        {},
        direct_url=f'{{"url": "file://{project}", "dir_info": {{"editable": true}}}}',
        top_level=f"{name}\n",
    )
    (info / "RECORD").write_text(f"{pth},,\n{info.name}/RECORD,,\n")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    root = tmp_path_factory.mktemp("layouts")
    e = Env(root / "env")
    e.add_dist("beta", {"beta.py": ""})
    # Item 3: one namespace, three distributions; the alphabetically first is not protobuf.
    e.add_dist("google-auth", {"google/auth/__init__.py": ""})
    e.add_dist("protobuf", {"google/protobuf/__init__.py": ""})
    e.add_dist("googleapis-common-protos", {"google/api/__init__.py": ""})
    # Item 4: Debian egg-info with top_level.txt only; egg-info with installed-files.txt;
    # a dist-info without RECORD named unlike its module; a distutils single-file egg-info.
    deb = e.site / "beautifulsoup4-4.11.1.egg-info"
    deb.mkdir()
    (deb / "PKG-INFO").write_text("Metadata-Version: 1.2\nName: beautifulsoup4\n")
    (deb / "top_level.txt").write_text("bs4\n")
    (e.site / "bs4").mkdir()
    (e.site / "bs4" / "__init__.py").write_text("")
    egg = e.site / "soupsieve-2.3.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Name: soupsieve\n")
    (egg / "installed-files.txt").write_text("../sieve/__init__.py\nPKG-INFO\n")
    (e.site / "sieve").mkdir()
    (e.site / "sieve" / "__init__.py").write_text("")
    # Item 6: a module whose optional dependency is missing, for LazyLoader.
    e.add_dist("lazyopt", {"lazyopt.py": LAZYOPT})
    return e


@pytest.fixture(scope="module")
def bare_env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    """Distributions without any file list (Debian dist-info, distutils egg-info, conda)."""
    root = tmp_path_factory.mktemp("bare")
    e = Env(root / "env")
    info = e.site / "python_yamlish-6.0.dist-info"  # a dist-info whose installer wrote no RECORD
    info.mkdir()
    (info / "METADATA").write_text("Name: python-yamlish\n")
    (e.site / "yamlish").mkdir()
    (e.site / "yamlish" / "__init__.py").write_text("")
    (e.site / "oldlib-1.0.egg-info").write_text("Name: oldlib\n")  # distutils: one file
    (e.site / "oldlib.py").write_text("")
    return e


@pytest.fixture(scope="module")
def conda_env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    e = Env(tmp_path_factory.mktemp("conda") / "env")
    (e.site / "condamod").mkdir()
    (e.site / "condamod" / "__init__.py").write_text("")
    meta = e.root / "conda-meta"
    meta.mkdir()
    rel = f"lib/{PY_VERSION}/site-packages/condamod/__init__.py"
    (meta / "conda-pkg-1.0-py_0.json").write_text(
        f'{{\n  "build": "py_0",\n  "files": [\n    "{rel}"\n  ],\n  "name": "conda-pkg"\n}}\n'
    )
    (e.site / "stray.py").write_text("")  # not in any record: never counted
    e.add_dist("beta", {"beta.py": ""})
    return e


def run(
    env: Env, listener: Listener, code: str, cwd: Path | None = None, **extra: str
) -> list[str]:
    result = env.run(code, env=listener.env(**extra), cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return sorted(listener.lines())


# --- 3. namespace packages shared by distributions ------------------------------------------


def test_a_shared_namespace_is_attributed_by_the_files_imported(
    env: Env, listener: Listener
) -> None:
    lines = run(env, listener, ACTIVATE + "import google.protobuf",
                PYTHON_POPCONTEST_COUNT_DISTRIBUTIONS="1")  # fmt: skip
    assert lines == sorted([PROCESS, pkg("google"), lib("protobuf")])


def test_a_namespace_imported_again_later_adds_its_new_owner(env: Env, listener: Listener) -> None:
    code = ACTIVATE + "import google.protobuf\nimport beta\nimport google.auth\n"
    lines = run(env, listener, code, PYTHON_POPCONTEST_COUNT_DISTRIBUTIONS="1")
    expected = [PROCESS, pkg("google"), pkg("beta"), lib("protobuf"), lib("beta"),
                lib("google-auth")]  # fmt: skip
    assert lines == sorted(expected)


def test_file_to_distribution_mapping(env: Env) -> None:
    code = (
        "from popularity_contest.inprocess.classify import Classifier\n"
        "import google.api, bs4, sieve, beta\n"
        "c = Classifier()\n"
        "for m in (google.api, bs4, sieve, beta):\n"
        "    d = c.distribution_of_file(m.__file__)\n"
        "    print(d.name if d else None)\n"
    )
    done = env.run(code, env={"PYTHON_POPCONTEST_DISABLE": "1"})
    assert done.stdout.split() == ["googleapis-common-protos", "None", "soupsieve", "beta"]


# --- 4. distributions without RECORD ---------------------------------------------------------


def test_egg_info_without_record_counts(env: Env, listener: Listener) -> None:
    lines = run(env, listener, ACTIVATE + "import bs4, sieve",
                PYTHON_POPCONTEST_COUNT_DISTRIBUTIONS="1")  # fmt: skip
    assert lines == sorted(
        [PROCESS, pkg("bs4"), pkg("sieve"), lib("beautifulsoup4"), lib("soupsieve")]
    )


def test_distributions_without_any_file_list_still_count(bare_env: Env, listener: Listener) -> None:
    lines = run(bare_env, listener, ACTIVATE + "import yamlish, oldlib",
                PYTHON_POPCONTEST_COUNT_DISTRIBUTIONS="1")  # fmt: skip
    # oldlib is named like its distribution; yamlish's owner is unknown: no library_used.
    assert lines == sorted([PROCESS, pkg("yamlish"), pkg("oldlib"), lib("oldlib")])


def test_conda_records_own_their_files(conda_env: Env, listener: Listener) -> None:
    lines = run(conda_env, listener, ACTIVATE + "import condamod, stray, beta",
                PYTHON_POPCONTEST_COUNT_DISTRIBUTIONS="1")  # fmt: skip
    assert lines == sorted([PROCESS, pkg("condamod"), lib("conda-pkg"), pkg("beta"), lib("beta")])


# --- 5. local installs -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Env, Path]:
    root = tmp_path_factory.mktemp("local")
    e = Env(root / "env", system_site_packages=True)
    user_base = root / "home" / ".local"
    user_site = user_base / "lib" / PY_VERSION / "site-packages"
    add_dist(user_site, "thesis-tools", {"thesis_tools/__init__.py": ""},
             direct_url='{"url": "file:///home/u/dist/thesis_tools-0.1-py3-none-any.whl", '
                        '"archive_info": {}}')  # fmt: skip
    e.add_dist("fromdir", {"fromdir/__init__.py": ""},
               direct_url='{"url": "file:///home/u/fromdir", "dir_info": {}}')  # fmt: skip
    e.add_dist("fromvcs", {"fromvcs.py": ""},
               direct_url='{"url": "https://x/y.git", "vcs_info": {"vcs": "git"}}')  # fmt: skip
    e.add_dist("fromweb", {"fromweb.py": ""},
               direct_url='{"url": "https://x/fromweb-1.0.whl", "archive_info": {}}')  # fmt: skip
    _editable(e, root / "projects" / "my proj", "editmod")
    legacy = root / "projects" / "legacy"
    (legacy / "legacymod").mkdir(parents=True)
    (legacy / "legacymod" / "__init__.py").write_text("")
    (e.site / "legacymod.egg-link").write_text(f"{legacy}\n.")
    (e.site / "easy-install.pth").write_text(f"{legacy}\n")
    return e, user_base


LOCAL = "import thesis_tools, fromdir, fromvcs, fromweb, editmod, legacymod\n"


@pytest.mark.parametrize("distributions", ["0", "1"])
def test_local_installs_never_leave_by_default(
    local_env: tuple[Env, Path], listener: Listener, distributions: str
) -> None:
    # With COUNT_DISTRIBUTIONS off, the start-up shortcut decides (classify otherwise).
    env, user_base = local_env
    lines = run(env, listener, ACTIVATE + LOCAL, PYTHONUSERBASE=str(user_base),
                PYTHON_POPCONTEST_COUNT_DISTRIBUTIONS=distributions)  # fmt: skip
    libraries = [lib("fromweb")] if distributions == "1" else []
    assert lines == sorted([PROCESS, pkg("fromweb"), *libraries])


def test_count_local_counts_every_local_kind(
    local_env: tuple[Env, Path], listener: Listener
) -> None:
    env, user_base = local_env
    lines = run(env, listener, ACTIVATE + LOCAL, PYTHONUSERBASE=str(user_base),
                PYTHON_POPCONTEST_COUNT_LOCAL="1")  # fmt: skip
    expected = [
        PROCESS,
        "python_popcon.user_imported_package.thesis_tools:1|c",
        *(pkg(n) for n in ("fromdir", "fromvcs", "fromweb", "editmod", "legacymod")),
    ]
    assert lines == sorted(expected)


# --- 6. never change what a program does --------------------------------------------------

LAZY = """
import importlib.util, sys
def lazy_import(name):
    spec = importlib.util.find_spec(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
lazyopt = lazy_import("lazyopt")
import beta, json
print("before first use", flush=True)
try:
    lazyopt.feature
except ImportError as error:
    print("optional dependency missing:", error.name)
"""


@pytest.mark.parametrize("eager", ["1", "0"])
def test_a_lazily_loaded_module_stays_lazy(
    env: Env, listener: Listener, eager: str, tmp_path: Path
) -> None:
    plain = env.run(LAZY, env={"PYTHON_POPCONTEST_DISABLE": "1"})
    result = env.run(ACTIVATE + LAZY, env=listener.env(PYTHON_POPCONTEST_EAGER=eager))
    expected = (
        "before first use\nlazyopt executed\n"
        "optional dependency missing: not_installed_optional_dependency\n"
    )
    assert (plain.returncode, plain.stdout) == (0, expected)
    assert (result.returncode, result.stdout, result.stderr) == (0, expected, "")
    # Counted once the program itself used it (its import ran then, not in ours).
    assert sorted(listener.lines()) == sorted([PROCESS, pkg("beta"), pkg("lazyopt")])


ODD = """
import sys, types
class Raising(types.ModuleType):
    def __getattribute__(self, name):
        raise RuntimeError("boom")
class Hooked(types.ModuleType):
    def __getattr__(self, name):
        raise SystemError("hook ran")
sys.modules["raising"] = Raising("raising")
sys.modules["hooked"] = Hooked("hooked")
sys.modules["notamodule"] = object()
sys.modules["nodict"] = 42
import beta, bs4
"""


@pytest.mark.parametrize("eager", ["1", "0"])
def test_one_odd_module_never_costs_the_others(env: Env, listener: Listener, eager: str) -> None:
    lines = run(env, listener, ACTIVATE + ODD, PYTHON_POPCONTEST_EAGER=eager)
    assert lines == sorted([PROCESS, pkg("beta"), pkg("bs4")])


# --- 1. plumbing programs and exec ----------------------------------------------------------


def test_a_process_that_execs_itself_counts_once(env: Env, listener: Listener) -> None:
    code = ACTIVATE + (
        "import os, sys, bs4, json\n"
        "os.execv(sys.executable, [sys.executable, '-c', "
        "'import popularity_contest.reporter, bs4, beta, os; "
        'assert os.environ["PYTHON_POPCONTEST_COUNTED"].startswith(str(os.getpid()))\'])\n'
    )
    assert run(env, listener, code) == sorted([PROCESS, pkg("bs4"), pkg("beta")])


def test_children_of_an_exec_marked_process_are_new_processes(env: Env, listener: Listener) -> None:
    code = ACTIVATE + (
        "import subprocess, sys, bs4, json\n"
        "subprocess.run([sys.executable, '-c', 'import popularity_contest.reporter, bs4'], "
        "check=True)\n"
    )
    assert run(env, listener, code) == sorted([PROCESS, PROCESS, pkg("bs4"), pkg("bs4")])


@pytest.mark.parametrize(
    "program", ["jupyter-lab", "jupyterhub-singleuser", "jupyter", "pip3.11", "jupyter-server"]
)
def test_plumbing_programs_never_report(
    env: Env, listener: Listener, tmp_path: Path, program: str
) -> None:
    script = tmp_path / program
    script.write_text(ACTIVATE + "import beta, bs4\n")
    done = subprocess.run(
        [str(env.python), str(script)], env=clean_env(listener.env()), timeout=60, check=False
    )
    assert done.returncode == 0
    assert listener.lines() == []


def test_python_m_pip_never_reports(env: Env, listener: Listener, tmp_path: Path) -> None:
    fake = tmp_path / "fakepip"
    (fake / "pip").mkdir(parents=True)
    (fake / "pip" / "__init__.py").write_text("")
    (fake / "pip" / "__main__.py").write_text(ACTIVATE + "import beta\n")
    done = subprocess.run(
        [str(env.python), "-m", "pip"],
        env=clean_env(listener.env(PYTHONPATH=str(fake))),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert listener.lines() == []


def test_the_same_script_under_another_name_reports(
    env: Env, listener: Listener, tmp_path: Path
) -> None:
    script = tmp_path / "analysis.py"
    script.write_text(ACTIVATE + "import beta\n")
    result = env.run(f"exec(open({str(script)!r}).read())", env=listener.env())
    assert result.returncode == 0
    assert sorted(listener.lines()) == sorted([PROCESS, pkg("beta")])
