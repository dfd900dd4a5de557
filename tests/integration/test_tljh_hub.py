"""The TLJH plugin's hub configuration in a real JupyterHub, set up as TLJH sets it up.

The hub's ``jupyterhub_config.py`` does what TLJH's does: it builds the services list with
the idle culler (here a stand-in that answers HTTP, so the test can see it runs), then asks
the plugins found through the ``tljh`` entry-point group to add theirs. With
``TLJH_INSTALL_PREFIX`` pointing at a temporary TLJH tree, the hub must start the culler
and the collector side by side, the collector must keep its store under TLJH's state
directory and close ``/metrics``, and a plain user (no admin) must get the page.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.collectorkit import free_port, stop_process
from tests.conftest import require
from tests.envkit import Env
from tests.integration.test_hub_service import Hub, browser, get, log_in

SERVICE = "popularity-contest"
PREFIX = f"/services/{SERVICE}/"
DEADLINE = 40.0

CONFIG = """
import sys

import pluggy

c = get_config()  # noqa: F821
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {public}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api}"
c.ConfigurableHTTPProxy.pid_file = {pid_file!r}
c.JupyterHub.db_url = "sqlite:///{tmp}/hub.sqlite"
c.JupyterHub.cookie_secret_file = {cookie_secret!r}
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True

# As tljh.configurer.update_services: TLJH's own list, with its idle culler.
c.JupyterHub.services = []
c.JupyterHub.services.append({{
    "name": "cull-idle",
    "admin": True,
    "url": "http://127.0.0.1:{cull_port}",
    "command": [
        sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", {cull_root!r},
        "{cull_port}",
    ],
}})

# As tljh.jupyterhub_config with tljh.utils.get_plugin_manager.
hookspec = pluggy.HookspecMarker("tljh")


class Hooks:
    @hookspec
    def tljh_custom_jupyterhub_config(self, c): ...


pm = pluggy.PluginManager("tljh")
pm.add_hookspecs(Hooks)
pm.load_setuptools_entrypoints("tljh")
pm.hook.tljh_custom_jupyterhub_config(c=c)
"""


@pytest.fixture(scope="module")
def tljh_prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tljh")
    (root / "config").mkdir()
    (root / "state").mkdir(mode=0o700)
    Env(root / "user")  # the users' environment the page lists
    settings = {
        "http_port": free_port(),
        "statsd_port": free_port(),  # never the default 8125 in a test
        "min_processes": 1,
    }
    document = {"users": {"admin": ["teacher"]}, "popularity_contest": settings}
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(document))
    return root


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, tljh_prefix: Path) -> Iterator[Hub]:
    pytest.importorskip("jupyterhub", reason="the hub extra: pip install -e '.[hub]'")
    require(
        shutil.which("configurable-http-proxy") is not None,
        "configurable-http-proxy not found: npm install -g configurable-http-proxy",
    )
    tmp = tmp_path_factory.mktemp("hub")
    public, proxy_api, hub_port, cull_port = (free_port() for _ in range(4))
    # The proxy forwards the whole path: the stand-in serves a page there.
    cull_root = tmp / "cull-root"
    (cull_root / "services" / "cull-idle").mkdir(parents=True)
    (cull_root / "services" / "cull-idle" / "index.html").write_text("culler stand-in\n")
    config = CONFIG.format(
        cull_root=str(cull_root),
        public=public,
        hub_port=hub_port,
        proxy_api=proxy_api,
        cull_port=cull_port,
        tmp=tmp,
        pid_file=str(tmp / "proxy.pid"),
        cookie_secret=str(tmp / "cookie_secret"),
    )
    (tmp / "jupyterhub_config.py").write_text(config)
    log = tmp / "hub.log"
    environment = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp),
        "TLJH_INSTALL_PREFIX": str(tljh_prefix),
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(tmp / "jupyterhub_config.py")],
            cwd=tmp,
            env=environment,
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


def test_tljhs_culler_and_the_collector_both_run(hub: Hub, tljh_prefix: Path) -> None:
    status, _, body, _ = get(browser(), hub.url + "/services/cull-idle/")
    assert (status, body) == (200, "culler stand-in\n")  # through the hub's proxy
    status, _, body, _ = get(browser(), hub.url + PREFIX + "healthz")
    assert status == 200, body
    assert (tljh_prefix / "state" / "popularity-contest" / "popcon.sqlite3").is_file()


def test_metrics_are_closed(hub: Hub) -> None:
    status, _, body, _ = get(browser(), hub.url + PREFIX + "metrics")
    assert status in (401, 403), (status, body[:300])
    assert "popcon_collector" not in body


def test_a_plain_hub_user_opens_the_page(hub: Hub) -> None:
    _, status, url, body = log_in(hub, "student")
    assert status == 200, f"{url}\n{body[:500]}\n{hub.diagnostics()}"
    assert urlsplit(url).path == PREFIX
    assert "<h1>Which installed packages people import</h1>" in body
