"""The TLJH plugin, called the way TLJH calls it.

TLJH is not on PyPI (and its installer needs the network), so the tests do what TLJH does:
a pluggy ``PluginManager("tljh")`` with hookspecs modelled on ``tljh/hooks.py``, plugins found
through the ``tljh`` entry-point group, the hooks' results combined as TLJH's installer does,
and ``tljh_custom_jupyterhub_config`` given a real traitlets ``Config`` that already holds
TLJH's idle-culler service. ``TLJH_INSTALL_PREFIX`` (TLJH's own variable) points at a
temporary directory whose ``user`` is a real venv.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import json
import logging
import re
import stat
import sys
from pathlib import Path
from typing import Any

import pluggy
import pytest
import yaml
from packaging.requirements import Requirement
from traitlets.config import Config

from popularity_contest import tljh
from tests.envkit import REPO, Env

hookspec = pluggy.HookspecMarker("tljh")


class TLJHHooks:
    """The hookspecs of TLJH's ``tljh/hooks.py`` (names and arguments; TLJH's are the truth)."""

    @hookspec
    def tljh_extra_user_conda_packages(self) -> None: ...

    @hookspec
    def tljh_extra_user_conda_channels(self) -> None: ...

    @hookspec
    def tljh_extra_user_pip_packages(self) -> None: ...

    @hookspec
    def tljh_extra_hub_pip_packages(self) -> None: ...

    @hookspec
    def tljh_extra_apt_packages(self) -> None: ...

    @hookspec
    def tljh_custom_jupyterhub_config(self, c: Any) -> None: ...

    @hookspec
    def tljh_config_post_install(self, config: Any) -> None: ...

    @hookspec
    def tljh_post_install(self) -> None: ...

    @hookspec
    def tljh_new_user_create(self, username: str) -> None: ...


# What TLJH's configurer builds for its idle culler (`set_cull_idle_service`).
CULLER = {
    "name": "cull-idle",
    "admin": True,
    "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=600"],
}


@pytest.fixture
def pm() -> pluggy.PluginManager:
    manager = pluggy.PluginManager("tljh")
    manager.add_hookspecs(TLJHHooks)
    manager.load_setuptools_entrypoints("tljh")
    manager.check_pending()  # every hookimpl matches a hookspec
    return manager


@pytest.fixture
def prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "tljh"
    (root / "config").mkdir(parents=True)
    (root / "state").mkdir(mode=0o700)
    monkeypatch.setenv("TLJH_INSTALL_PREFIX", str(root))
    return root


def configure(prefix: Path, **settings: object) -> None:
    """What ``tljh-config set popularity_contest.KEY VALUE`` leaves in config.yaml."""
    document = {"users": {"admin": ["teacher"]}, "popularity_contest": settings}
    (prefix / "config" / "config.yaml").write_text(yaml.safe_dump(document))


def user_packages(pm: pluggy.PluginManager) -> list[str]:
    # As tljh.installer.run_plugin_actions combines the plugins' answers.
    return list(set(itertools.chain(*pm.hook.tljh_extra_user_pip_packages())))


def hub_packages(pm: pluggy.PluginManager) -> list[str]:
    return list(set(itertools.chain(*pm.hook.tljh_extra_hub_pip_packages())))


def tljh_config() -> Config:
    """A Config as TLJH's jupyterhub_config.py has it when it calls the plugins."""
    c = Config()
    c.JupyterHub.services = []
    c.JupyterHub.services.append(dict(CULLER))
    c.JupyterHub.hub_port = 15001
    return c


def test_the_plugin_is_found_through_the_tljh_entry_point_group(
    pm: pluggy.PluginManager,
) -> None:
    points = importlib.metadata.entry_points(group="tljh")
    ours = [point for point in points if point.value == "popularity_contest.tljh"]
    assert len(ours) == 1
    assert ours[0].load() is tljh
    assert pm.get_plugin(ours[0].name) is tljh
    hooks = {
        impl.function.__name__
        for caller in pm.get_hookcallers(tljh) or []
        for impl in caller.get_hookimpls()
    }
    assert hooks == {
        "tljh_extra_user_pip_packages",
        "tljh_extra_hub_pip_packages",
        "tljh_post_install",
        "tljh_custom_jupyterhub_config",
    }


def test_by_default_both_environments_get_the_plugins_own_origin(
    pm: pluggy.PluginManager, prefix: Path
) -> None:
    # This checkout is installed (editable) from a directory: pip recorded that location.
    [user] = user_packages(pm)
    [hub] = hub_packages(pm)
    user_req, hub_req = Requirement(user), Requirement(hub)
    assert user_req.name == hub_req.name == "popularity-contest"
    assert user_req.url == hub_req.url == REPO.as_uri()
    assert user_req.extras == set()
    assert hub_req.extras == {"collector", "hub"}


@pytest.mark.parametrize(
    ("spec", "user", "hub"),
    [
        (
            "popularity-contest==0.5.0",
            "popularity-contest==0.5.0",
            "popularity-contest[collector,hub]==0.5.0",
        ),
        (
            "popularity-contest>=0.5.0.dev0",
            "popularity-contest>=0.5.0.dev0",
            "popularity-contest[collector,hub]>=0.5.0.dev0",
        ),
        (
            "/root/popularity_contest-0.5.0-py3-none-any.whl",
            "popularity-contest @ file:///root/popularity_contest-0.5.0-py3-none-any.whl",
            "popularity-contest[collector,hub] @ file:///root/popularity_contest-0.5.0-py3-none-any.whl",
        ),
        (
            "https://example.org/w/popularity_contest-0.5.0-py3-none-any.whl",
            "popularity-contest @ https://example.org/w/popularity_contest-0.5.0-py3-none-any.whl",
            "popularity-contest[collector,hub] @ https://example.org/w/popularity_contest-0.5.0-py3-none-any.whl",
        ),
        (
            "Popularity_Contest @ file:///srv/wheels/popularity_contest-0.5.0-py3-none-any.whl",
            "Popularity_Contest @ file:///srv/wheels/popularity_contest-0.5.0-py3-none-any.whl",
            "Popularity_Contest[collector,hub] @ file:///srv/wheels/popularity_contest-0.5.0-py3-none-any.whl",
        ),
    ],
)
def test_a_configured_package_spec_is_what_pip_gets(
    pm: pluggy.PluginManager, prefix: Path, spec: str, user: str, hub: str
) -> None:
    configure(prefix, package_spec=spec)
    assert user_packages(pm) == [user]
    assert hub_packages(pm) == [hub]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("popularity-contest", "would install popularity-contest 0.4.1"),
        ("popularity-contest>=0.4", "would install popularity-contest 0.4.1"),
        ("popularity-contest<1", "would install popularity-contest 0.4.1"),
        ("popularity-contest==0.4.*", "would install popularity-contest 0.4.1"),
        ("statsd==4.0.1", "names 'statsd', not 'popularity-contest'"),
        ("popularity contest >= 0.5 !!", "package_spec: "),
    ],
)
def test_a_spec_that_could_install_the_old_release_or_another_project_fails_loudly(
    pm: pluggy.PluginManager, prefix: Path, spec: str, message: str
) -> None:
    configure(prefix, package_spec=spec)
    for hook in (user_packages, hub_packages):
        with pytest.raises(tljh.TLJHPluginError, match=r"\.package_spec") as raised:
            hook(pm)
        assert message in str(raised.value)


def write_dist(root: Path, version: str, direct_url: dict[str, object] | None) -> Path:
    info = root / f"popularity_contest-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: popularity-contest\nVersion: {version}\n"
    )
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))
    return info


@pytest.mark.parametrize(
    ("direct_url", "expected"),
    [
        (None, "popularity-contest==0.5.0"),
        (
            {
                "url": "file:///root/popularity_contest-0.5.0-py3-none-any.whl",
                "archive_info": {"hashes": {"sha256": "ab" * 32}, "hash": "sha256=" + "ab" * 32},
            },
            "popularity-contest @ file:///root/popularity_contest-0.5.0-py3-none-any.whl"
            "#sha256=" + "ab" * 32,
        ),
        (
            {"url": "file:///srv/popularity-contest", "dir_info": {}},
            "popularity-contest @ file:///srv/popularity-contest",
        ),
        (
            {
                "url": "https://git.example.org/popcon.git",
                "vcs_info": {"vcs": "git", "commit_id": "0123abcd" * 5},
            },
            "popularity-contest @ git+https://git.example.org/popcon.git@" + "0123abcd" * 5,
        ),
    ],
)
def test_own_origin_reinstalls_exactly_what_the_hub_environment_has(
    tmp_path: Path, direct_url: dict[str, object] | None, expected: str
) -> None:
    info = write_dist(tmp_path, "0.5.0", direct_url)
    origin = tljh.own_origin(importlib.metadata.PathDistribution(info))
    assert origin == expected
    assert Requirement(tljh.requirement(origin)).name == "popularity-contest"


def test_an_index_install_pins_its_own_version_which_the_old_release_cannot_satisfy(
    tmp_path: Path,
) -> None:
    origin = tljh.own_origin(
        importlib.metadata.PathDistribution(write_dist(tmp_path, "0.5.0.dev0", None))
    )
    assert origin == "popularity-contest==0.5.0.dev0"
    assert not Requirement(origin).specifier.contains("0.4.1", prereleases=True)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"min_procesess": 5}, "unknown setting popularity_contest.min_procesess"),
        ({"install_site": "maybe"}, "popularity_contest.install_site: expected true or false"),
        ({"http_port": "nine"}, "popularity_contest.http_port: expected a whole number"),
        ({"http_port": 70000}, "popularity_contest.http_port: not a port number"),
        ({"min_processes": 0}, "popularity_contest.min_processes: must be at least 1"),
        ({"access": "everyone"}, "popularity_contest.access: 'everyone' is not one of"),
        ({"package_spec": 5}, "popularity_contest.package_spec: expected text"),
    ],
)
def test_bad_settings_name_the_key(
    pm: pluggy.PluginManager, prefix: Path, section: dict[str, object], message: str
) -> None:
    configure(prefix, **section)
    with pytest.raises(tljh.TLJHPluginError, match=re.escape(message)):
        user_packages(pm)


def test_settings_accept_what_tljh_config_and_hand_edits_write(prefix: Path) -> None:
    configure(prefix, install_site="yes", http_port="9200", min_processes=3, collector=False)
    settings = tljh.load_settings()
    assert settings == tljh.Settings(
        install_site=True, http_port=9200, min_processes=3, collector=False
    )
    (prefix / "config" / "config.yaml").unlink()
    assert tljh.load_settings() == tljh.Settings()


@pytest.fixture
def user_env(prefix: Path) -> Env:
    return Env(prefix / "user")


def test_post_install_turns_the_reporter_on_in_the_user_environment(
    pm: pluggy.PluginManager, prefix: Path, user_env: Env
) -> None:
    configure(prefix)
    startup = prefix / "user" / "etc" / "ipython" / "startup" / "00-popularity-contest.py"
    pth = user_env.site / "zz_popularity_contest.pth"
    pm.hook.tljh_post_install()
    assert "popularity_contest.reporter" in startup.read_text()
    assert not pth.exists()
    state = prefix / "state" / "popularity-contest"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700

    configure(prefix, install_site=True)
    pm.hook.tljh_post_install()
    assert "popularity_contest" in pth.read_text()
    assert startup.exists()

    configure(prefix, install_site=False)  # the setting is the state: switching off removes it
    pm.hook.tljh_post_install()
    assert not pth.exists()
    assert startup.exists()


def test_post_install_fails_loudly_without_the_package_in_the_user_environment(
    pm: pluggy.PluginManager, prefix: Path
) -> None:
    bare = Env(prefix / "user")
    (bare.site / "_popcon_checkout.pth").unlink()  # the package is not importable there
    with pytest.raises(tljh.TLJHPluginError, match=r"install ipython exited with 1"):
        pm.hook.tljh_post_install()


def our_service(services: list[dict[str, Any]]) -> dict[str, Any]:
    [service] = [s for s in services if s["name"] == "popularity-contest"]
    return service


def test_the_collector_is_appended_to_tljhs_services_and_the_culler_stays(
    pm: pluggy.PluginManager, prefix: Path
) -> None:
    configure(prefix)
    c = tljh_config()
    pm.hook.tljh_custom_jupyterhub_config(c=c)
    services = c.JupyterHub.services
    assert services[0] == CULLER
    assert [s["name"] for s in services] == ["cull-idle", "popularity-contest"]
    service = services[1]
    assert service["url"] == "http://127.0.0.1:9102"
    db = prefix / "state" / "popularity-contest" / "popcon.sqlite3"
    assert service["command"] == [
        sys.executable,
        "-m",
        "popularity_contest",
        "serve",
        "--db",
        str(db),
        "--http",
        "127.0.0.1:9102",
        "--statsd",
        "127.0.0.1:8125",
        "--environment",
        str(prefix / "user" / "bin" / "python"),
    ]
    assert Path(service["command"][0]).is_absolute()
    assert service["environment"] == {
        "PYTHON_POPCONTEST_SERVE_MIN_PROCESSES": "5",
        "PYTHON_POPCONTEST_SERVE_METRICS_AUTH": "1",
    }
    assert c.JupyterHub.hub_port == 15001
    # Nothing set them before: a LazyConfigValue that extends JupyterHub's default (none).
    assert c.JupyterHub.load_roles.get_value([]) == [
        {"name": "user", "scopes": ["self", "access:services!service=popularity-contest"]}
    ]


def test_jupyterhub_reads_the_services_and_roles_the_plugin_appended(
    pm: pluggy.PluginManager, prefix: Path
) -> None:
    jupyterhub_app = pytest.importorskip("jupyterhub.app", reason="the hub extra")
    configure(prefix, min_processes=10, http_port=9200)
    # With TLJH's list, and with nothing set yet (then the plugin's entry extends the default).
    for c, before in ((tljh_config(), ["cull-idle"]), (Config(), [])):
        pm.hook.tljh_custom_jupyterhub_config(c=c)
        hub = jupyterhub_app.JupyterHub(config=c)
        assert [s["name"] for s in hub.services] == [*before, "popularity-contest"]
        service = our_service(hub.services)
        assert service["environment"]["PYTHON_POPCONTEST_SERVE_MIN_PROCESSES"] == "10"
        assert service["url"] == "http://127.0.0.1:9200"
        [role] = hub.load_roles
        assert role["name"] == "user"
        assert "access:services!service=popularity-contest" in role["scopes"]
        assert "self" in role["scopes"]


def test_an_existing_user_role_gets_the_scope_added_not_replaced(
    pm: pluggy.PluginManager, prefix: Path
) -> None:
    configure(prefix)
    c = tljh_config()
    c.JupyterHub.load_roles = [
        {"name": "user", "scopes": ["self", "read:users:name"]},
        {"name": "tas", "scopes": ["admin:servers"], "groups": ["tas"]},
    ]
    pm.hook.tljh_custom_jupyterhub_config(c=c)
    assert c.JupyterHub.load_roles == [
        {
            "name": "user",
            "scopes": ["self", "read:users:name", "access:services!service=popularity-contest"],
        },
        {"name": "tas", "scopes": ["admin:servers"], "groups": ["tas"]},
    ]


def test_admins_only_adds_no_role_and_a_statsd_port_reaches_the_users_servers(
    pm: pluggy.PluginManager, prefix: Path
) -> None:
    configure(prefix, access="admins", statsd_port=18125)
    c = tljh_config()
    c.Spawner.environment = {"TZ": "UTC"}
    pm.hook.tljh_custom_jupyterhub_config(c=c)
    assert "load_roles" not in c.JupyterHub
    assert "--statsd" in our_service(c.JupyterHub.services)["command"]
    assert "127.0.0.1:18125" in our_service(c.JupyterHub.services)["command"]
    assert c.Spawner.environment == {"TZ": "UTC", "PYTHON_POPCONTEST_STATSD_PORT": "18125"}


def test_collector_false_leaves_the_hub_alone_and_installs_only_the_reporter(
    pm: pluggy.PluginManager, prefix: Path
) -> None:
    configure(prefix, collector=False)
    c = tljh_config()
    pm.hook.tljh_custom_jupyterhub_config(c=c)
    assert c.JupyterHub.services == [CULLER]
    assert "load_roles" not in c.JupyterHub
    assert Requirement(hub_packages(pm)[0]).extras == set()


@pytest.mark.parametrize(
    "problem",
    ["unreadable yaml", "bad setting", "missing module", "service already there"],
)
def test_the_hub_configuration_hook_never_stops_the_hub(
    pm: pluggy.PluginManager,
    prefix: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    problem: str,
) -> None:
    configure(prefix)
    c = tljh_config()
    if problem == "unreadable yaml":
        (prefix / "config" / "config.yaml").write_text("popularity_contest: [unclosed\n")
    elif problem == "bad setting":
        configure(prefix, http_port="all of them")
    elif problem == "missing module":
        monkeypatch.setattr(tljh, "SERVICE_MODULES", (*tljh.SERVICE_MODULES, "no_such_module.x"))
    else:
        c.JupyterHub.services.append({"name": "popularity-contest", "url": "http://x:1"})
    before = [dict(s) for s in c.JupyterHub.services]
    with caplog.at_level(logging.WARNING, logger="tljh.popularity_contest"):
        pm.hook.tljh_custom_jupyterhub_config(c=c)
    assert c.JupyterHub.services == before
    assert "load_roles" not in c.JupyterHub
    assert caplog.records, "the reason is logged"
    assert "popularity-contest" in caplog.text or "popularity_contest" in caplog.text
