"""`serve` as a service of a real JupyterHub: the page needs a hub login with the access scope.

The hub (DummyAuthenticator, sqlite in tmp, configurable-http-proxy from npm) starts the
collector as a managed service; a urllib client with a cookie jar plays the browser.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from tests.collectorkit import free_port, stop_process
from tests.conftest import require

SERVICE = "popularity-contest"
PREFIX = f"/services/{SERVICE}/"
HTML = {"Accept": "text/html,application/xhtml+xml"}
DEADLINE = 40.0


@dataclass
class Hub:
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def diagnostics(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def browser() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))


def get(
    opener: urllib.request.OpenerDirector, url: str, headers: dict[str, str] | None = None
) -> tuple[int, str, str, Message]:
    """(status, final URL, body, headers); HTTP errors are answers too."""
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback
    try:
        with opener.open(request, timeout=10) as reply:
            return reply.status, reply.geturl(), reply.read().decode(), reply.headers
    except urllib.error.HTTPError as error:
        return error.code, error.geturl(), error.read().decode(errors="replace"), error.headers


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    pytest.importorskip("jupyterhub", reason="the hub extra: pip install -e '.[hub]'")
    require(
        shutil.which("configurable-http-proxy") is not None,
        "configurable-http-proxy not found: npm install -g configurable-http-proxy",
    )
    tmp = tmp_path_factory.mktemp("hub")
    public, proxy_api, hub_port, service_port = (free_port() for _ in range(4))
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
    config = f"""
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {public}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api}"
c.ConfigurableHTTPProxy.pid_file = {str(tmp / "proxy.pid")!r}
c.JupyterHub.db_url = "sqlite:///{tmp / "hub.sqlite"}"
c.JupyterHub.cookie_secret_file = {str(tmp / "cookie_secret")!r}
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.services = [{{
    "name": {SERVICE!r},
    "url": "http://127.0.0.1:{service_port}",
    "command": {command!r},
    "oauth_no_confirm": True,
}}]
c.JupyterHub.load_roles = [{{
    "name": "popcon-viewers",
    "scopes": ["access:services!service={SERVICE}"],
    "users": ["alice"],
}}]
"""
    (tmp / "jupyterhub_config.py").write_text(config)
    log = tmp / "hub.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(tmp / "jupyterhub_config.py")],
            cwd=tmp,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    running = Hub(f"http://127.0.0.1:{public}", log, process)
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                status = get(browser(), running.url + PREFIX + "healthz")[0]
            except urllib.error.URLError:  # the proxy is not listening yet
                status = 0
            if status == 200:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"hub or service not ready ({status}):\n{running.diagnostics()}")
            time.sleep(0.2)
        yield running
    finally:
        stop_process(process, timeout=15)


def log_in(hub: Hub, user: str) -> tuple[urllib.request.OpenerDirector, int, str, str]:
    """Open the page as a browser would, log in at the hub's form when sent there."""
    opener = browser()
    status, url, body, _ = get(opener, hub.url + PREFIX, HTML)
    assert status == 200, body
    assert urlsplit(url).path == "/hub/login", url
    xsrf = re.search(r'name="_xsrf"\s+value="([^"]+)"', body)
    form = {"username": user, "password": "any"}
    if xsrf:
        form["_xsrf"] = xsrf.group(1)
    request = urllib.request.Request(url, data=urlencode(form).encode(), headers=HTML)  # noqa: S310
    try:
        with opener.open(request, timeout=20) as reply:
            return opener, reply.status, reply.geturl(), reply.read().decode()
    except urllib.error.HTTPError as error:
        return opener, error.code, error.geturl(), error.read().decode(errors="replace")


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
