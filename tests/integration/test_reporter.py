"""The reporter in real Python processes, sending real datagrams to a UDP socket on 127.0.0.1."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import require
from tests.envkit import Env, Listener, add_dist

ACTIVATE = "import popularity_contest.reporter\n"
PROCESS = "python_popcon.processes_reported:1|c"
SAFE_LINE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*:1\|c$")


def pkg(name: str, prefix: str = "python_popcon.imported_package") -> str:
    return f"{prefix}.{name}:1|c"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    e = Env(tmp_path_factory.mktemp("venv") / "env")
    e.add_dist("alpha", {"alpha/__init__.py": "import alpha.sub\n", "alpha/sub.py": ""})
    e.add_dist("beta", {"beta.py": "VALUE = 1\n"})
    # Like six.py: a plain module that sets its own submodule_search_locations.
    e.add_dist("sixish", {"sixish.py": "__spec__.submodule_search_locations = []\n"})
    e.add_dist("python-gamma", {"gamma/__init__.py": ""})  # package name differs from dist
    e.add_dist("nsdist", {"nspkg/part.py": ""})  # a namespace package: no __init__.py
    e.add_dist("six-like", {"sixlike.py": ""}, top_level="sixlike\n")
    e.add_dist(
        "thesis",  # pip install ./thesis: a local directory, a user's own project
        {"thesis/__init__.py": ""},
        direct_url='{"url": "file:///home/u/thesis", "dir_info": {}}',
    )
    e.add_dist(
        "fromvcs",
        {"fromvcs.py": ""},
        direct_url='{"url": "https://x/y.git", "vcs_info": {"vcs": "git", "commit_id": "a"}}',
    )
    e.add_dist(
        "wheelfile", {"wheelfile.py": ""}, direct_url='{"url": "file:///w.whl", "archive_info": {}}'
    )
    # A module lying in site-packages that no distribution provides.
    (e.site / "stray.py").write_text("")
    return e


def run(env: Env, listener: Listener, code: str, **extra: str) -> list[str]:
    result = env.run(code, env=listener.env(**extra))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == ""
    return listener.lines()


def test_counts_each_new_package_from_installed_distributions(env: Env, listener: Listener) -> None:
    lines = run(env, listener, ACTIVATE + "import alpha, beta, gamma, nspkg.part, sixlike")
    assert Counter(lines) == Counter(
        [PROCESS, pkg("alpha"), pkg("beta"), pkg("gamma"), pkg("nspkg"), pkg("sixlike")]
    )


def test_packages_imported_before_activation_are_not_sent(env: Env, listener: Listener) -> None:
    lines = run(env, listener, "import alpha\n" + ACTIVATE + "import alpha.sub, beta")
    assert sorted(lines) == sorted([PROCESS, pkg("beta")])


def test_stdlib_local_and_unowned_modules_never_leave(
    env: Env, listener: Listener, tmp_path: Path
) -> None:
    (tmp_path / "analysis.py").write_text("")
    (tmp_path / "secret_project").mkdir()
    (tmp_path / "secret_project" / "__init__.py").write_text("")
    code = ACTIVATE + (
        "import json, email.mime.text, xml.dom, sqlite3, _json\n"
        "import analysis, secret_project, stray, thesis, fromvcs\n"
    )
    result = env.run(code, env=listener.env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert listener.lines() == [PROCESS]


def test_archive_installs_count_and_local_installs_count_only_when_asked(
    env: Env, listener: Listener
) -> None:
    lines = run(
        env,
        listener,
        ACTIVATE + "import thesis, fromvcs, wheelfile",
        PYTHON_POPCONTEST_COUNT_LOCAL="1",
    )
    assert sorted(lines) == sorted([PROCESS, pkg("thesis"), pkg("fromvcs"), pkg("wheelfile")])


def test_a_package_imported_twice_counts_once(env: Env, listener: Listener) -> None:
    code = ACTIVATE + (
        "import importlib, sys\nimport beta\nimportlib.reload(beta)\n"
        "del sys.modules['beta']\nimport beta\n"
    )
    assert sorted(run(env, listener, code)) == sorted([PROCESS, pkg("beta")])


@pytest.mark.parametrize("eager", ["1", "0"])
def test_eager_and_exit_only_modes_report_the_same(
    env: Env, listener: Listener, eager: str
) -> None:
    code = ACTIVATE + "import alpha, beta, sixish"
    lines = run(env, listener, code, PYTHON_POPCONTEST_EAGER=eager)
    assert sorted(lines) == sorted([PROCESS, pkg("alpha"), pkg("beta"), pkg("sixish")])


def test_eager_reporting_survives_sigkill(env: Env, listener: Listener) -> None:
    # alpha imports a submodule, so the observer sees alpha in sys.modules and sends at once.
    code = ACTIVATE + "import os, signal\nimport alpha\nos.kill(os.getpid(), signal.SIGKILL)\n"
    result = env.run(code, env=listener.env())
    assert result.returncode == -9
    assert sorted(listener.lines()) == sorted([PROCESS, pkg("alpha")])


def test_failed_imports_do_not_stop_eager_reporting(env: Env, listener: Listener) -> None:
    # Names that never reach sys.modules are left to the exit sweep after a few checks.
    code = ACTIVATE + (
        "import os, signal\nfor name in ('nosuch1', 'nosuch2', 'nosuch3'):\n"
        "    try:\n        __import__(name)\n    except ImportError:\n        pass\n"
        "import json, csv, alpha\nimport beta\nimport decimal\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = env.run(code, env=listener.env())
    assert result.returncode == -9
    assert sorted(listener.lines()) == sorted([PROCESS, pkg("alpha"), pkg("beta")])


def test_a_process_that_imports_nothing_still_counts_once(env: Env, listener: Listener) -> None:
    code = ACTIVATE + "import importlib, json\nimportlib.reload(popularity_contest.reporter)\n"
    code += "popularity_contest.reporter.setup_reporter()\n" + ACTIVATE
    assert run(env, listener, code) == [PROCESS]


def test_per_hub_prefix_names_the_process_counter_beside_it(env: Env, listener: Listener) -> None:
    prefix = "python_popcon.hub.staging-hub.imported_package"
    lines = run(env, listener, ACTIVATE + "import beta", PYTHON_POPCONTEST_STATSD_PREFIX=prefix)
    assert sorted(lines) == sorted(
        ["python_popcon.hub.staging-hub.processes_reported:1|c", pkg("beta", prefix)]
    )


def test_distribution_counters_are_opt_in_and_normalised(env: Env, listener: Listener) -> None:
    lines = run(
        env, listener, ACTIVATE + "import gamma, beta", PYTHON_POPCONTEST_COUNT_DISTRIBUTIONS="1"
    )
    assert sorted(lines) == sorted(
        [
            PROCESS,
            pkg("gamma"),
            pkg("beta"),
            "python_popcon.library_used.python-gamma:1|c",
            "python_popcon.library_used.beta:1|c",
        ]
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PYTHON_POPCONTEST_STATSD_PORT", "abc"),
        ("PYTHON_POPCONTEST_STATSD_PORT", "99999"),
        ("PYTHON_POPCONTEST_STATSD_HOST", ""),
        ("PYTHON_POPCONTEST_STATSD_HOST", "host name\nwith junk"),
        ("PYTHON_POPCONTEST_STATSD_PREFIX", "python_popcon.x:1|c\nevil"),
        ("PYTHON_POPCONTEST_DISABLE", "1"),
    ],
)
def test_bad_or_disabling_settings_send_nothing_and_stay_silent(
    env: Env, listener: Listener, variable: str, value: str
) -> None:
    assert run(env, listener, ACTIVATE + "import beta", **{variable: value}) == []


HOSTILE = r"""
import sys, types
class Exploding(types.ModuleType):
    def __getattribute__(self, name):
        raise RuntimeError("boom")
sys.modules["evil:1|c\nhacked"] = types.ModuleType("x")
sys.modules["tag|#label:x"] = types.ModuleType("x")
sys.modules["space name"] = types.ModuleType("x")
sys.modules["über"] = types.ModuleType("x")
sys.modules[42] = object()
sys.modules[("tuple",)] = None
sys.modules["exploding"] = Exploding("exploding")
liar = types.ModuleType("liar")
liar.__file__ = sys.modules["beta"].__file__.replace("beta.py", "alpha/__init__.py")
sys.modules["liar"] = liar
sys.modules["secret"] = sys.modules["beta"]  # an alias of a real package
"""


def test_hostile_module_names_never_add_a_line_or_field(env: Env, listener: Listener) -> None:
    (env.site / "evil_dist-1.0.dist-info").mkdir(exist_ok=True)
    lines = run(
        env,
        listener,
        "import beta\n" + ACTIVATE + HOSTILE + "import alpha",
        PYTHON_POPCONTEST_COUNT_DISTRIBUTIONS="1",
    )
    assert sorted(lines) == sorted([PROCESS, pkg("alpha"), "python_popcon.library_used.alpha:1|c"])
    assert all(SAFE_LINE.match(line) for line in lines)


def test_a_dead_collector_port_is_silent(env: Env) -> None:
    listener = Listener()
    port = listener.port
    listener.close()  # nothing listens there now: sends are refused
    result = env.run(
        ACTIVATE + "import alpha, beta",
        env={
            "PYTHON_POPCONTEST_STATSD_HOST": "127.0.0.1",
            "PYTHON_POPCONTEST_STATSD_PORT": str(port),
        },
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_unresolvable_host_is_silent_and_fast(env: Env) -> None:
    started = time.monotonic()
    result = env.run(
        ACTIVATE + "import alpha", env={"PYTHON_POPCONTEST_STATSD_HOST": "no-such-host.invalid"}
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert time.monotonic() - started < 5


def test_five_hundred_packages_all_arrive(tmp_path: Path, listener: Listener) -> None:
    env = Env(tmp_path / "big")
    names = [f"pkg{i:03d}" for i in range(500)]
    for name in names:
        add_dist(env.site, name, {f"{name}.py": ""})
    for eager in ("1", "0"):
        listener.clear()
        lines = run(
            env,
            listener,
            ACTIVATE + "".join(f"import {n}\n" for n in names),
            PYTHON_POPCONTEST_EAGER=eager,
        )
        assert Counter(lines) == Counter([PROCESS] + [pkg(n) for n in names])


def test_user_site_packages_are_reported_apart(tmp_path: Path, listener: Listener) -> None:
    env = Env(tmp_path / "sys", system_site_packages=True)
    user_base = tmp_path / "home" / ".local"
    user_site = user_base / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    user_site = user_site / "site-packages"
    add_dist(user_site, "usertool", {"usertool.py": ""})
    add_dist(
        user_site,
        "thesis",
        {"thesis/__init__.py": ""},
        direct_url='{"url": "file:///home/u/thesis", "dir_info": {}}',
    )
    lines = run(env, listener, ACTIVATE + "import usertool, thesis", PYTHONUSERBASE=str(user_base))
    assert sorted(lines) == sorted([PROCESS, "python_popcon.user_imported_package.usertool:1|c"])


FORK = (
    ACTIVATE
    + """
import os
import alpha
pid = os.fork()
if pid == 0:
    import beta
    raise SystemExit(0)
os.waitpid(pid, 0)
"""
)


def test_a_forked_child_reports_only_its_own_imports(env: Env, listener: Listener) -> None:
    assert Counter(run(env, listener, FORK)) == Counter([PROCESS, pkg("alpha"), pkg("beta")])


SPAWN = (
    ACTIVATE
    + """
import multiprocessing as mp
def work():
    import popularity_contest.reporter
    import beta
if __name__ == "__main__":
    import alpha
    ctx = mp.get_context("spawn")
    p = ctx.Process(target=work)
    p.start(); p.join()
"""
)


def test_a_spawned_interpreter_is_a_new_process(
    env: Env, listener: Listener, tmp_path: Path
) -> None:
    script = tmp_path / "spawn_main.py"
    script.write_text(SPAWN)
    result = subprocess.run(
        [str(env.python), str(script)],
        env=_env(listener),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert Counter(listener.lines()) == Counter([PROCESS, PROCESS, pkg("alpha"), pkg("beta")])


def _env(listener: Listener) -> dict[str, str]:
    from tests.envkit import clean_env

    return clean_env(listener.env())


BLACKHOLE_DNS = "127.0.0.53"


@pytest.mark.needs_root
def test_a_resolver_that_never_answers_costs_at_most_a_bounded_wait(
    env: Env, tmp_path: Path
) -> None:
    """A private mount namespace whose resolv.conf names a DNS server that never answers."""
    unshare = shutil.which("unshare")
    require(
        unshare is not None and _can_unshare(),
        "needs root and unshare(1) for a private mount namespace (util-linux)",
    )
    import socket

    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # swallows every query
    dns.bind((BLACKHOLE_DNS, 53))
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {BLACKHOLE_DNS}\noptions timeout:5 attempts:2\n")

    def timed(
        code: str, extra: dict[str, str], timeout: float = 60
    ) -> tuple[float, subprocess.CompletedProcess[str]]:
        started = time.monotonic()
        shell = f'mount --bind "{resolv}" /etc/resolv.conf && exec "$0" -c "$1"'
        result = subprocess.run(
            [str(unshare), "--mount", "sh", "-c", shell, str(env.python), code],
            env=_env_plain(extra),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return time.monotonic() - started, result

    try:
        # The setup really hangs a plain lookup (the upstream client's constructor does this).
        with pytest.raises(subprocess.TimeoutExpired):
            timed("import socket; socket.getaddrinfo('collector.example', 8125)", {}, 3)
        elapsed, result = timed(
            ACTIVATE + "import alpha, beta", {"PYTHON_POPCONTEST_STATSD_HOST": "collector.example"}
        )
    finally:
        dns.close()
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert elapsed < 2.0


def _env_plain(extra: dict[str, str]) -> dict[str, str]:
    from tests.envkit import clean_env

    return clean_env(extra)


def _can_unshare() -> bool:
    try:
        return (
            subprocess.run(
                ["unshare", "--mount", "true"], capture_output=True, timeout=10, check=False
            ).returncode
            == 0
        )
    except OSError:
        return False


HEAVY = (
    "socket",
    "threading",
    "typing",
    "asyncio",
    "sqlite3",
    "prometheus_client",
    "importlib.metadata",
    "statsd",
    "json",
    "re",
    "collections",
    "popularity_contest.collector",
    "popularity_contest.commands.main",
)


def test_activation_and_exit_import_nothing_heavy(env: Env, listener: Listener) -> None:
    code = (
        "import sys, atexit\n"
        f"heavy = {HEAVY!r}\n"
        "def loaded(): print(sorted(m for m in heavy if m in sys.modules))\n"
        # Registered before activation, so it runs after the reporter's exit hook (LIFO).
        "atexit.register(loaded)\n" + ACTIVATE + "loaded()\nimport beta\n"
    )
    result = env.run(code, env=listener.env())
    assert result.returncode == 0, result.stderr
    # At activation and after the exit hook ran (atexit runs hooks last-in, first-out).
    assert result.stdout.split("\n") == ["[]", "[]", ""]
    assert sorted(listener.lines()) == sorted([PROCESS, pkg("beta")])
