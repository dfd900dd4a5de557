"""install/uninstall/check: the pure pieces (files, environments, resolution, parsing)."""

from __future__ import annotations

import builtins
import json
import socket
import threading
import time
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from popularity_contest import activation as install
from popularity_contest import names
from popularity_contest.commands import check, check_result, check_steps
from popularity_contest.commands.main import main


def fake_env(root: Path, *, site: bool = True, marker: bool = True) -> Path:
    """A prefix that looks like a venv but has no interpreter (so the glob fallback runs)."""
    root.mkdir(parents=True, exist_ok=True)
    if marker:
        (root / "pyvenv.cfg").write_text("home = /nowhere\n")
    if site:
        (root / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    return root


def broken_import(*_args: object, **_kwargs: object) -> object:
    raise RuntimeError("popularity_contest is broken")


@pytest.mark.parametrize("failure", [ImportError, RuntimeError, SyntaxError, OSError])
def test_startup_file_swallows_any_failure_and_binds_no_names(
    failure: type[Exception],
) -> None:
    def failing_import(*_args: object, **_kwargs: object) -> object:
        raise failure("broken")

    namespace: dict[str, Any] = {"__builtins__": {**vars(builtins), "__import__": failing_import}}
    exec(compile(install.STARTUP_TEXT, install.STARTUP_NAME, "exec"), namespace)  # noqa: S102
    assert set(namespace) == {"__builtins__"}


def test_startup_file_imports_the_reporter_without_binding_names() -> None:
    imported: list[str] = []

    def recording_import(name: str, *_args: object, **_kwargs: object) -> object:
        imported.append(name)
        return None

    namespace: dict[str, Any] = {"__builtins__": {**vars(builtins), "__import__": recording_import}}
    exec(compile(install.STARTUP_TEXT, install.STARTUP_NAME, "exec"), namespace)  # noqa: S102
    assert imported == ["popularity_contest.reporter"]
    assert set(namespace) == {"__builtins__"}


def test_pth_is_one_import_line_that_site_executes() -> None:
    lines = install.PTH_TEXT.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("import ")  # `site` executes only lines starting with "import"
    compile(lines[0], install.PTH_NAME, "exec")


def test_pth_sorts_after_the_usual_pth_files() -> None:
    others = ["distutils-precedence.pth", "_virtualenv.pth", "__editable__.x-1.0.pth", "z.pth"]
    assert sorted([*others, install.PTH_NAME])[-1] == install.PTH_NAME


def test_startup_file_sorts_before_usual_startup_files() -> None:
    others = ["01-imports.py", "10-user.py", "50-extensions.ipy", "README"]
    assert sorted([*others, install.STARTUP_NAME])[0] == install.STARTUP_NAME


@pytest.mark.parametrize("method", install.METHODS)
def test_install_then_uninstall_is_idempotent(tmp_path: Path, method: str) -> None:
    prefix = fake_env(tmp_path / "env")
    expected = {
        "ipython": prefix / "etc" / "ipython" / "startup" / install.STARTUP_NAME,
        "site": prefix / "lib" / "python3.11" / "site-packages" / install.PTH_NAME,
    }[method]

    first = install.install(method, prefix)
    assert (first.action, first.path) == ("created", expected)
    assert expected.read_text() == install.content(method)
    assert install.install(method, prefix).action == "unchanged"

    expected.write_text("# an older version\n")
    assert install.install(method, prefix).action == "updated"
    assert expected.read_text() == install.content(method)
    assert [p.name for p in expected.parent.iterdir()] == [expected.name]  # no temp files

    assert install.uninstall(method, prefix).action == "removed"
    assert not expected.exists()
    assert install.uninstall(method, prefix).action == "absent"


def test_installed_reports_presence_and_staleness(tmp_path: Path) -> None:
    prefix = fake_env(tmp_path / "env")
    env = install.locate(prefix)
    assert {f.method: f.installed for f in install.installed(env)} == {
        "ipython": False,
        "site": False,
    }
    install.install("site", prefix)
    env.startup_file().parent.mkdir(parents=True)
    env.startup_file().write_text("# old\n")
    state = {f.method: f for f in install.installed(env)}
    assert state["site"] == install.ActivationFile("site", str(env.pth_file()), True, True)
    assert state["ipython"].installed is True
    assert state["ipython"].current is False


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("missing", "does not exist"),
        ("file", "is not a directory"),
        ("empty", "is not a Python environment"),
        ("two-sites", "several site-packages"),
    ],
)
def test_locate_refuses_what_is_not_an_environment(
    tmp_path: Path, layout: str, message: str
) -> None:
    target = tmp_path / "target"
    if layout == "file":
        target.write_text("")
    elif layout == "empty":
        target.mkdir()
    elif layout == "two-sites":
        fake_env(target)
        (target / "lib" / "python3.12" / "site-packages").mkdir(parents=True)
    with pytest.raises(install.InstallError, match=message):
        install.locate(target)


def test_site_needs_a_site_packages_directory(tmp_path: Path) -> None:
    prefix = fake_env(tmp_path / "env", site=False)
    with pytest.raises(install.InstallError, match="no site-packages"):
        install.install("site", prefix)
    assert install.install("ipython", prefix).action == "created"  # needs only the prefix


@pytest.mark.parametrize("method", install.METHODS)
def test_unwritable_target_is_one_clear_error(tmp_path: Path, method: str) -> None:
    # Root may write anywhere, so make the parent directory a file instead of chmod.
    prefix = fake_env(tmp_path / "env")
    if method == "ipython":
        (prefix / "etc").write_text("not a directory")
    else:
        site = prefix / "lib" / "python3.11" / "site-packages"
        site.rmdir()
        site.write_text("not a directory")
        # A file named site-packages is no site-packages directory either.
    with pytest.raises(install.InstallError, match=r"^(cannot write|.*no site-packages)"):
        install.install(method, prefix)


def test_permission_error_names_the_path_and_a_remedy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = fake_env(tmp_path / "env")

    def refuse(*_args: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(install.os, "replace", refuse)
    with pytest.raises(install.InstallError) as raised:
        install.install("site", prefix)
    text = str(raised.value)
    assert text.startswith("cannot write ")
    assert install.PTH_NAME in text
    assert "Permission denied" in text
    assert "--prefix" in text


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_run_prints_a_table_or_json_and_fails_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = fake_env(tmp_path / "env")
    args = ["install", "site", "--prefix", str(prefix)]
    code, out, err = run_cli(args, capsys)
    assert code == 0
    assert err == ""
    header, row = out.splitlines()[:2]
    assert header.split() == ["METHOD", "ACTION", "PATH"]
    assert row.split()[:2] == ["site", "created"]

    code, out, _ = run_cli([*args, "--format", "json"], capsys)
    assert code == 0
    assert json.loads(out)["action"] == "unchanged"

    missing = ["uninstall", "site", "--prefix", str(tmp_path / "nope")]
    code, out, err = run_cli(missing, capsys)
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "does not exist" in err


# --- check ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "name"),
    [
        ("python_popcon.imported_package", "python_popcon.check"),
        ("python_popcon.hub.physics.imported_package", "python_popcon.hub.physics.check"),
    ],
)
def test_test_counter_is_a_sibling_no_package_rule_matches(prefix: str, name: str) -> None:
    assert check_steps.test_counter_name(prefix) == name
    assert not name.startswith(prefix + ".")


@pytest.mark.parametrize(
    ("text", "total"),
    [
        ("", None),
        ("# TYPE python_popcon_check_total counter\npython_popcon_check_total 3.0\n", 3.0),
        (
            'python_popcon_check_total{namespace=""} 2\n'
            'python_popcon_check_total{namespace="a b}"} 5\n',
            7.0,
        ),
        ("python_popcon_check_total_created 1.7e9\npython_popcon_check_totals 4\n", None),
        ("python_popcon_check_total NaNish\n", None),
    ],
)
def test_metric_total_sums_one_family(text: str, total: float | None) -> None:
    assert check_steps.metric_total(text, names.CHECK) == total


def test_resolve_prefers_ipv4() -> None:
    calls: list[int] = []

    def fake(host: str, port: int, family: int, kind: int) -> list[tuple[Any, ...]]:
        calls.append(family)
        return [(family, kind, 17, "", ("192.0.2.1" if family else "::1", port))]

    found = check_steps.resolve("collector", 8125, 1.0, fake)
    assert found == (socket.AF_INET, ("192.0.2.1", 8125))
    assert calls == [socket.AF_INET]


def test_resolve_reports_failure() -> None:
    def fail(*_args: object) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(check_steps.UnreachableError, match="not known"):
        check_steps.resolve("nowhere", 8125, 1.0, fail)


def test_resolve_never_waits_longer_than_its_timeout() -> None:
    release = threading.Event()

    def hang(*_args: object) -> list[tuple[Any, ...]]:
        release.wait(30)
        raise socket.gaierror("released")

    started = time.monotonic()
    try:
        with pytest.raises(check_steps.UnreachableError) as caught:
            check_steps.resolve("hangs", 8125, 0.2, hang)
    finally:
        release.set()
    assert time.monotonic() - started < 2.0
    assert str(caught.value) == "no answer within 0.2 s"


def test_check_fails_fast_when_resolution_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hang(*_args: object) -> list[tuple[Any, ...]]:
        release.wait(30)
        return []

    env = {"PYTHON_POPCONTEST_STATSD_HOST": "collector.example"}
    started = time.monotonic()
    try:
        result = check.gather(None, 0.2, env, hang)
    finally:
        release.set()
    assert time.monotonic() - started < 2.0
    assert result.healthy is False
    assert result.test_counter.sent is False
    assert any("cannot resolve collector.example" in p for p in result.problems)


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"PYTHON_POPCONTEST_STATSD_PORT": "99999"}, "configuration:"),
        ({"PYTHON_POPCONTEST_STATSD_HOST": ""}, "configuration:"),
        ({"PYTHON_POPCONTEST_DISABLE": "1"}, "reporting is disabled"),
    ],
)
def test_check_sends_nothing_when_misconfigured_or_disabled(
    env: dict[str, str], problem: str
) -> None:
    def must_not_resolve(*_args: object) -> list[tuple[Any, ...]]:
        raise AssertionError("resolved although reporting is off")

    result = check.gather(None, 0.5, env, must_not_resolve)
    assert result.healthy is False
    assert result.test_counter.sent is False
    assert result.problems[0].startswith(problem)
    assert "NOT healthy" in check.render(result)


def _module(name: str, origin: Path, package: bool) -> ModuleType:
    module = ModuleType(name)
    spec = ModuleSpec(name, None, origin=str(origin), is_package=package)
    if package:
        spec.submodule_search_locations = [str(origin.parent)]
    module.__spec__ = spec
    module.__file__ = str(origin)
    return module


def test_would_report_lists_only_counted_packages(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    (site / "probe").mkdir(parents=True)
    (site / "probe" / "__init__.py").write_text("")
    (site / "probe-1.0.dist-info").mkdir()
    (site / "probe-1.0.dist-info" / "RECORD").write_text("probe/__init__.py,,\n")
    (site / "stray.py").write_text("")  # no distribution provides it
    modules = {
        "probe": _module("probe", site / "probe" / "__init__.py", package=True),
        "probe.sub": _module("probe.sub", site / "probe" / "sub.py", package=False),
        "stray": _module("stray", site / "stray.py", package=False),
        "json": _module("json", tmp_path / "json" / "__init__.py", package=True),
    }
    sites = {str(site): "site"}
    cfg = check_steps.config.reporter_config({"PYTHON_POPCONTEST_STATSD_PREFIX": "a.b.imported"})
    assert check_steps.would_report(cfg, modules, sites) == [
        check_result.Report(
            package="probe", kind="site", distribution="probe", name="a.b.imported.probe"
        )
    ]
    assert check_steps.would_report(cfg, modules, {str(site): "user"})[0].name == (
        "a.b.user_imported_package.probe"
    )


MAPPED, LINES, EXPORTER_LINES = check_steps.EVIDENCE


@pytest.mark.parametrize(
    ("before", "after", "evidence"),
    [
        ({MAPPED: 2.0, LINES: 10.0}, {MAPPED: 3.0, LINES: 11.0}, MAPPED),
        ({MAPPED: None, LINES: 10.0}, {MAPPED: 1.0, LINES: 11.0}, MAPPED),  # first check ever
        # A mapped counter that did not move is not rescued by other traffic.
        ({MAPPED: 2.0, LINES: 10.0}, {MAPPED: 2.0, LINES: 11.0}, None),
        ({MAPPED: None, LINES: 10.0}, {MAPPED: None, LINES: 11.0}, LINES),  # no mapping rule
        ({MAPPED: None, LINES: 10.0}, {MAPPED: None, LINES: 10.0}, None),
        ({MAPPED: None, LINES: None}, {MAPPED: None, LINES: None}, None),  # not a collector
    ],
)
def test_collector_evidence(
    before: dict[str, float | None], after: dict[str, float | None], evidence: str | None
) -> None:
    assert check_steps.received(before, after) == evidence


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (
            "# TYPE popcon_collector_lines_received_total counter\n",
            check_result.Endpoint.POPULARITY_CONTEST,
        ),
        ("statsd_exporter_lines_total 4\n", check_result.Endpoint.STATSD_EXPORTER),
        (
            "# TYPE node_cpu_seconds_total counter\nnode_cpu_seconds_total 1\n",
            check_result.Endpoint.OTHER,
        ),
        ("", check_result.Endpoint.OTHER),
        ("<html>not metrics</html>", check_result.Endpoint.OTHER),
    ],
)
def test_endpoint_is_judged_by_its_metric_names(text: str, kind: check_result.Endpoint) -> None:
    assert check_result.Endpoint.of(text) is kind


def test_check_json_keeps_its_keys() -> None:
    result = check.gather(None, 0.5, {"PYTHON_POPCONTEST_DISABLE": "1"})
    doc = json.loads(json.dumps(result.as_dict()))
    assert set(doc) == {
        "config",
        "python",
        "prefix",
        "environment",
        "activation",
        "would_report",
        "processes_counter",
        "test_counter",
        "resolve",
        "collector",
        "unusable",
        "healthy",
        "problems",
        "warnings",
    }
    assert set(doc["activation"]) == {"ipython", "site", "active_in_this_process"}
    assert set(doc["config"]) == {"host", "port", "prefix", "eager", "disabled", "problem"}
    assert doc["healthy"] is False
    assert doc["environment"]["here"] is True


@pytest.mark.parametrize("method", install.METHODS)
def test_install_refuses_to_replace_a_symbolic_link(tmp_path: Path, method: str) -> None:
    prefix = fake_env(tmp_path / "env")
    target = install.locate(prefix).target(method)
    target.parent.mkdir(parents=True, exist_ok=True)
    victim = tmp_path / "victim"
    for text in ("precious\n", install.content(method)):  # even when the text is the same
        victim.write_text(text)
        target.symlink_to(victim)
        with pytest.raises(install.InstallError, match="symbolic link"):
            install.install(method, prefix)
        assert victim.read_text() == text
        assert target.is_symlink()
        target.unlink()


def test_install_never_follows_a_planted_temporary_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The old temporary name was predictable (.<name>.<pid>.tmp): a link planted there by
    # someone who can write to site-packages must not redirect root's write.
    import os

    prefix = fake_env(tmp_path / "env")
    target = install.locate(prefix).target("site")
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    planted = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    planted.symlink_to(victim)
    assert install.install("site", prefix).action == "created"
    assert victim.read_text() == "precious\n"
    assert target.read_text() == install.content("site")
    assert not target.is_symlink()
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    leftovers = sorted(p.name for p in target.parent.iterdir())
    assert leftovers == sorted([target.name, planted.name])  # ours cleaned, theirs untouched
