"""`serve`'s settings: one table of flags and variables, addresses, and the login decision."""

from __future__ import annotations

import argparse

import pytest

from popularity_contest.collector.settings import (
    SETTINGS,
    Config,
    ConfigError,
    parse_address,
)
from popularity_contest.commands.main import build_parser

PREFIX = "/services/popcon/"
SERVICE = {
    "JUPYTERHUB_SERVICE_NAME": "popcon",
    "JUPYTERHUB_API_TOKEN": "secret",
    "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api",
    "JUPYTERHUB_CLIENT_ID": "service-popcon",
    "JUPYTERHUB_SERVICE_PREFIX": PREFIX,
    "JUPYTERHUB_OAUTH_CALLBACK_URL": PREFIX + "oauth_callback",
}
#: What a user's own server (and its terminals) carries: no service name.
USER_SERVER = {
    "JUPYTERHUB_API_TOKEN": "user-token",
    "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api",
    "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-alice",
    "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/",
    "JUPYTERHUB_USER": "alice",
}


def config(*argv: str, **environ: str) -> Config:
    args = build_parser().parse_args(["serve", *argv])
    return Config.from_args(args, environ)


def test_every_setting_has_a_flag_and_a_variable_shown_in_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    text = "".join(capsys.readouterr().out.split())  # argparse wraps lines, even at hyphens
    for setting in SETTINGS:
        assert setting.flag in text
        assert "".join(f"${setting.variable}; default {setting.default}]".split()) in text
        assert setting.variable.startswith("PYTHON_POPCONTEST_SERVE_")
    assert "example:" in text


def test_flags_win_over_variables_which_win_over_defaults() -> None:
    assert config().flush_interval == 1.0
    assert config(PYTHON_POPCONTEST_SERVE_FLUSH_INTERVAL="5").flush_interval == 5.0
    assert (
        config("--flush-interval", "2", PYTHON_POPCONTEST_SERVE_FLUSH_INTERVAL="5").flush_interval
        == 2.0
    )
    assert config("--max-series", "10").max_series == 10
    assert config(PYTHON_POPCONTEST_SERVE_NO_STATSD="1").statsd is None
    assert config("--no-statsd").statsd is None
    with pytest.raises(ConfigError, match="--flush-interval / PYTHON_POPCONTEST_SERVE_FLUSH"):
        config("--flush-interval", "nan")
    with pytest.raises(ConfigError, match="PYTHON_POPCONTEST_SERVE_NO_STATSD"):
        config(PYTHON_POPCONTEST_SERVE_NO_STATSD="maybe")


def test_port_alone_means_loopback_never_every_interface() -> None:
    assert parse_address(":9102", "--http") == ("127.0.0.1", 9102)
    assert parse_address("0.0.0.0:9102", "--http") == ("0.0.0.0", 9102)
    assert parse_address("[::1]:0", "--http") == ("::1", 0)
    assert config("--http", ":9200").http == ("127.0.0.1", 9200)
    for bad in ("9102", "host:", "host:99999", ":x"):
        with pytest.raises(ConfigError, match="HOST:PORT"):
            parse_address(bad, "--http")


def test_a_hub_service_gets_a_login_and_closed_metrics() -> None:
    cfg = config(**SERVICE)
    assert cfg.hub is not None
    assert cfg.hub["JUPYTERHUB_CLIENT_ID"] == "service-popcon"
    assert cfg.metrics_auth
    assert not config("--open-metrics", **SERVICE).metrics_auth
    assert not config(PYTHON_POPCONTEST_SERVE_OPEN_METRICS="1", **SERVICE).metrics_auth


def test_a_user_server_s_variables_do_not_make_a_hub_service() -> None:
    cfg = config(**USER_SERVER)
    assert cfg.hub is None
    assert any("not a hub service" in note for note in cfg.notes)
    assert config().hub is None
    assert config().notes == ()


@pytest.mark.parametrize(
    "missing", ["JUPYTERHUB_API_TOKEN", "JUPYTERHUB_CLIENT_ID", "JUPYTERHUB_SERVICE_PREFIX"]
)
@pytest.mark.parametrize("value", [None, "", "  "])
def test_an_incomplete_hub_login_refuses_to_start(missing: str, value: str | None) -> None:
    environ = dict(SERVICE)
    if value is None:
        del environ[missing]
    else:
        environ[missing] = value
    with pytest.raises(ConfigError, match=f"{missing} is missing or blank"):
        config(**environ)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("JUPYTERHUB_SERVICE_PREFIX", "/services/other/", "not the prefix of service"),
        ("JUPYTERHUB_SERVICE_PREFIX", "services/popcon", "expected /.../"),
        ("JUPYTERHUB_OAUTH_CALLBACK_URL", "/elsewhere/oauth_callback", "not under the service"),
    ],
)
def test_an_inconsistent_hub_login_refuses_to_start(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**{**SERVICE, name: value})


def test_login_can_be_required_or_declined_explicitly() -> None:
    with pytest.raises(ConfigError, match="--login jupyterhub"):
        config("--login", "jupyterhub", **{**USER_SERVER, "JUPYTERHUB_API_TOKEN": ""})
    assert config("--login", "jupyterhub", **USER_SERVER).hub is not None
    declined = config("--login", "none", **SERVICE)
    assert declined.hub is None
    assert any("open to anyone" in note for note in declined.notes)
    with pytest.raises(ConfigError, match="one of auto, jupyterhub, none"):
        Config.from_args(argparse.Namespace(), {"PYTHON_POPCONTEST_SERVE_LOGIN": "maybe"})
