"""`serve` as a service of a real JupyterHub: the page needs a hub login with the access scope.

The hub (DummyAuthenticator, sqlite in tmp, configurable-http-proxy from npm) starts the
collector as a managed service; a urllib client with a cookie jar plays the browser.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.collectorkit import free_port
from tests.hubkit import HTML, PREFIX, SERVICE, Hub, NoRedirect, browser, get, log_in, running_hub

SERVICES = """
c.JupyterHub.services = [{{
    "name": {service!r},
    "url": "http://127.0.0.1:{service_port}",
    "command": {command!r},
    "oauth_no_confirm": True,
}}]
c.JupyterHub.load_roles = [{{
    "name": "popcon-viewers",
    "scopes": ["access:services!service={service}"],
    "users": ["alice"],
}}]
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    tmp = tmp_path_factory.mktemp("hub")
    service_port = free_port()
    command = [
        sys.executable,
        "-m",
        "popularity_contest",
        "serve",
        "--http",
        f"127.0.0.1:{service_port}",
        "--statsd",
        "127.0.0.1:0",
        "--db",
        str(tmp / "popcon.sqlite3"),
    ]
    config = SERVICES.format(service=SERVICE, service_port=service_port, command=command)
    with running_hub(tmp, config) as running:
        yield running


def test_without_login_the_page_redirects_to_the_hub_and_api_calls_get_401(hub: Hub) -> None:
    opener = urllib.request.build_opener(NoRedirect())
    status, _, _, headers = get(opener, hub.url + PREFIX + "?window=7d", HTML)
    assert status == 302
    location = urlsplit(headers["Location"])
    assert location.path == "/hub/api/oauth2/authorize"
    assert "state=" in location.query
    assert "code_challenge=" in location.query
    assert f"client_id=service-{SERVICE}" in location.query
    cookie = headers["Set-Cookie"]
    assert f"service-{SERVICE}-oauth-state=" in cookie
    assert "HttpOnly" in cookie
    assert f"Path={PREFIX}" in cookie
    status, _, body, _ = get(opener, hub.url + PREFIX + "api/v1/packages")
    assert status == 401, body


def test_healthz_is_open_and_metrics_needs_a_hub_login_by_default(hub: Hub) -> None:
    status, _, body, _ = get(browser(), hub.url + PREFIX + "healthz")
    assert (status, json.loads(body)["status"]) == (200, "ok")
    status, _, body, _ = get(browser(), hub.url + PREFIX + "metrics")
    assert status == 401
    assert "popcon_collector" not in body
    opener = log_in(hub, "alice")[0]
    status, _, body, _ = get(opener, hub.url + PREFIX + "metrics")
    assert status == 200
    assert "popcon_collector_lines_received_total" in body


def test_a_user_with_the_access_scope_sees_the_page_and_the_api(hub: Hub) -> None:
    opener, status, url, body = log_in(hub, "alice")
    assert status == 200, f"{url}\n{body[:500]}\n{hub.diagnostics()}"
    assert urlsplit(url).path == PREFIX
    assert "<html" in body.lower()
    assert "<h1>Which installed packages people import</h1>" in body
    status, _, body, headers = get(opener, hub.url + PREFIX + "api/v1/namespaces")
    assert status == 200, body
    assert "namespaces" in json.loads(body)
    assert headers["Cache-Control"] == "private"
    status, _, body, headers = get(opener, hub.url + PREFIX + "static/plotly.min.js")
    assert status == 200
    assert headers["Cache-Control"] == "public, max-age=86400"
    etag = headers["ETag"]
    status, _, body, _ = get(
        opener, hub.url + PREFIX + "static/plotly.min.js", {"If-None-Match": etag}
    )
    assert (status, body) == (304, "")


def test_a_user_without_the_access_scope_is_refused(hub: Hub) -> None:
    opener, status, url, body = log_in(hub, "bob")
    assert status == 403, f"{url}\n{body[:500]}"
    assert "Which installed packages" not in body
    status, _, body, _ = get(opener, hub.url + PREFIX + "api/v1/namespaces")
    assert status == 401
    assert "namespaces" not in body


def test_a_forged_callback_is_refused(hub: Hub) -> None:
    status, _, body, _ = get(browser(), hub.url + PREFIX + "oauth_callback?code=abc&state=xyz")
    assert status == 403
    assert "state" in body


@pytest.mark.parametrize("token", [None, "", " "])
def test_a_hub_service_without_its_api_token_refuses_to_start(
    tmp_path: Path, token: str | None
) -> None:
    # The proxy would publish the page: never serve it without the login it was set up for.
    environ = {key: value for key, value in os.environ.items() if not key.startswith("JUPYTERHUB_")}
    environ.update(
        JUPYTERHUB_SERVICE_NAME=SERVICE,
        JUPYTERHUB_CLIENT_ID=f"service-{SERVICE}",
        JUPYTERHUB_SERVICE_PREFIX=PREFIX,
        JUPYTERHUB_API_URL="http://127.0.0.1:1/hub/api",
    )
    if token is not None:
        environ["JUPYTERHUB_API_TOKEN"] = token
    command = ["serve", "--http", "127.0.0.1:0", "--statsd", "127.0.0.1:0"]
    result = subprocess.run(
        [sys.executable, "-m", "popularity_contest", *command, "--db", str(tmp_path / "p.db")],
        env=environ,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "JUPYTERHUB_API_TOKEN is missing or blank" in result.stderr
    assert "Traceback" not in result.stderr
