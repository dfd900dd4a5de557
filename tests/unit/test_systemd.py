"""The systemd unit's contract with ``serve``: the state directory is the default store."""

from __future__ import annotations

import pytest

from popularity_contest.collector import settings as config
from tests import systemdkit


@pytest.mark.parametrize(
    ("state_directory", "expected"),
    [
        ("/var/lib/popularity-contest", "/var/lib/popularity-contest/popcon.sqlite3"),
        ("/var/lib/popularity-contest:/var/lib/b", "/var/lib/popularity-contest/popcon.sqlite3"),
    ],
)
def test_under_systemd_the_store_is_in_the_state_directory(
    state_directory: str, expected: str
) -> None:
    environ = {"STATE_DIRECTORY": state_directory, "XDG_DATA_HOME": "/srv/xdg", "HOME": "/h"}
    assert config.default_db_path(environ) == expected


@pytest.mark.parametrize("state_directory", ["", "relative/dir", ":"])
def test_without_a_usable_state_directory_the_xdg_default_stays(state_directory: str) -> None:
    environ = {"STATE_DIRECTORY": state_directory, "XDG_DATA_HOME": "/srv/xdg"}
    assert config.default_db_path(environ) == "/srv/xdg/popularity-contest/popcon.sqlite3"


def test_the_unit_gives_the_service_a_state_directory_a_settings_file_and_its_own_user() -> None:
    service = systemdkit.read_unit()["Service"]
    assert service["StateDirectory"] == ["popularity-contest"]
    assert service["EnvironmentFile"] == ["-/etc/default/popularity-contest"]
    assert service["DynamicUser"] == ["yes"]
    assert "User" in service  # a stable name for the dynamic user in logs and ps
    assert systemdkit.exec_start()[:4] == [
        systemdkit.UNIT_PYTHON,
        "-m",
        "popularity_contest",
        "serve",
    ]
    # The store and the addresses come from the state directory and the settings file.
    assert not {"--db", "--http", "--statsd"} & set(systemdkit.exec_start())


def test_the_settings_file_documents_every_serve_variable_and_sets_none() -> None:
    serve_variables = {
        getattr(config, name)
        for name in dir(config)
        if name.startswith("SERVE_") and isinstance(getattr(config, name), str)
    }
    # Only meaningful when a JupyterHub runs the collector, never under this unit.
    serve_variables.discard(config.SERVE_METRICS_AUTH)
    assert serve_variables <= systemdkit.commented_variables()
    assert systemdkit.read_env_file() == {}  # the defaults, until the operator edits it
