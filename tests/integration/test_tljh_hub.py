"""The TLJH plugin's hub configuration in a real JupyterHub, set up as TLJH sets it up.

The hub's ``jupyterhub_config.py`` does what TLJH's does: it builds the services list with
the idle culler (here a stand-in that answers HTTP, so the test can see it runs), then asks
the plugins found through the ``tljh`` entry-point group to add theirs. With
``TLJH_INSTALL_PREFIX`` pointing at a temporary TLJH tree, the hub must start the culler
and the collector side by side, the collector must keep its store under TLJH's state
directory and close ``/metrics``, and a plain user (no admin) must get the page.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.collectorkit import free_port
from tests.envkit import Env
from tests.hubkit import PREFIX, Hub, browser, get, log_in, running_hub

CONFIG = """
import sys

import pluggy

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
    tmp = tmp_path_factory.mktemp("hub")
    cull_port = free_port()
    # The proxy forwards the whole path: the stand-in serves a page there.
    cull_root = tmp / "cull-root"
    (cull_root / "services" / "cull-idle").mkdir(parents=True)
    (cull_root / "services" / "cull-idle" / "index.html").write_text("culler stand-in\n")
    config = CONFIG.format(cull_root=str(cull_root), cull_port=cull_port)
    environment = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp),
        "TLJH_INSTALL_PREFIX": str(tljh_prefix),
    }
    with running_hub(tmp, config, environment) as running:
        yield running


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
