"""A real JupyterHub for tests, and a urllib client that plays the browser.

``running_hub`` writes a ``jupyterhub_config.py`` (free 127.0.0.1 ports for the public
proxy, its API and the hub; sqlite and the cookie secret in the test's directory;
DummyAuthenticator, every user allowed) followed by what the test adds (its services,
roles, plugins), starts ``python -m jupyterhub`` with configurable-http-proxy from npm, and
yields once the collector's ``/healthz`` answers 200 through the proxy: the hub is up, the
proxy routes to the service and the service listens. On the way out the hub is stopped
(SIGTERM; it stops the proxy and its managed services).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from tests.collectorkit import free_port, stop_process, wait_until
from tests.conftest import require

SERVICE = "popularity-contest"
PREFIX = f"/services/{SERVICE}/"
HTML = {"Accept": "text/html,application/xhtml+xml"}
DEADLINE = 40.0  # seconds for the hub, the proxy and the service to come up

BASE_CONFIG = """
c = get_config()  # noqa: F821
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {public}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api}"
c.ConfigurableHTTPProxy.pid_file = {pid_file!r}
c.JupyterHub.db_url = {db_url!r}
c.JupyterHub.cookie_secret_file = {cookie_secret!r}
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
"""


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


@contextmanager
def running_hub(tmp: Path, config: str, env: Mapping[str, str] | None = None) -> Iterator[Hub]:
    """A hub started in ``tmp`` with the base config plus ``config``, ready; stopped after.

    ``env`` is the hub's whole environment (default: this process's). Skips without the
    hub extra; without configurable-http-proxy, skips locally and fails under CI.
    """
    pytest.importorskip("jupyterhub", reason="the hub extra: pip install -e '.[hub]'")
    require(
        shutil.which("configurable-http-proxy") is not None,
        "configurable-http-proxy not found: npm install -g configurable-http-proxy"
        " (make system-deps)",
    )
    public, proxy_api, hub_port = (free_port() for _ in range(3))
    base = BASE_CONFIG.format(
        public=public,
        hub_port=hub_port,
        proxy_api=proxy_api,
        pid_file=str(tmp / "proxy.pid"),
        db_url=f"sqlite:///{tmp / 'hub.sqlite'}",
        cookie_secret=str(tmp / "cookie_secret"),
    )
    (tmp / "jupyterhub_config.py").write_text(base + config)
    log = tmp / "hub.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(tmp / "jupyterhub_config.py")],
            cwd=tmp,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    running = Hub(f"http://127.0.0.1:{public}", log, process)
    last = [0]  # the last status of the service's /healthz through the proxy (0: no answer)

    def ready() -> bool | None:
        try:
            last[0] = get(browser(), running.url + PREFIX + "healthz")[0]
        except urllib.error.URLError:  # the proxy is not listening yet
            last[0] = 0
        if last[0] == 200:
            return True
        if process.poll() is not None:
            pytest.fail(f"hub exited ({process.returncode}):\n{running.diagnostics()}")
        return None

    try:
        try:
            wait_until(ready, "the hub and the service behind its proxy", DEADLINE)
        except AssertionError as error:
            pytest.fail(f"{error} (last /healthz: {last[0]}):\n{running.diagnostics()}")
        yield running
    finally:
        stop_process(process, timeout=15)
