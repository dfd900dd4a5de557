"""The Littlest JupyterHub (TLJH) plugin: the reporter for every user, the collector for the hub.

TLJH finds this module through the ``tljh`` entry-point group and calls its pluggy hooks:

* ``tljh_extra_hub_pip_packages`` (installer): this project with the ``collector`` and ``hub``
  extras, for the hub environment (``/opt/tljh/hub``) that runs the collector;
* ``tljh_extra_user_pip_packages`` (installer): this project for the user environment
  (``/opt/tljh/user``), where users' kernels run the reporter;
* ``tljh_post_install`` (installer, after the packages): ``install ipython`` (and
  ``install site`` when configured, ``uninstall site`` when not) with the user
  environment's interpreter;
* ``tljh_custom_jupyterhub_config`` (each hub start): the collector as a managed hub service
  behind the hub's login, appended to TLJH's services (its idle culler stays), and a role
  entry that lets users open it. Nothing TLJH set is replaced.

The plugin's parts: ``tljh.settings`` (TLJH's directories under ``TLJH_INSTALL_PREFIX`` and
the ``popularity_contest`` section of TLJH's ``config.yaml``, which ``tljh-config set
popularity_contest.KEY VALUE`` writes; see ``Settings`` for the keys), ``tljh.package``
(which package the hooks install: by default exactly the one this plugin came from, so the
hub and the users run the same version) and ``tljh.hub`` (the service and the role added to
JupyterHub's configuration). This module holds the hooks and runs the installer's steps.

The installer hooks raise ``TLJHPluginError`` with a message for the operator (TLJH's
installer stops there). The JupyterHub configuration hook never raises: an exception in
``jupyterhub_config.py`` would stop the hub, and TLJH would restart it in a loop; it logs
why the collector is left out instead.
"""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys
from typing import Any

import pluggy

from popularity_contest.tljh.hub import configure_hub
from popularity_contest.tljh.package import HUB_EXTRAS, own_origin, package_spec, requirement
from popularity_contest.tljh.settings import Paths, Settings, TLJHPluginError, load_settings

__all__ = [
    "SERVICE_MODULES",
    "Paths",
    "Settings",
    "TLJHPluginError",
    "load_settings",
    "missing_modules",
    "own_origin",
    "post_install",
    "requirement",
    "tljh_custom_jupyterhub_config",
    "tljh_extra_hub_pip_packages",
    "tljh_extra_user_pip_packages",
    "tljh_post_install",
]

# TLJH's installer logs through the "tljh" logger (its file /opt/tljh/installer.log and the
# terminal); a child logger's records go there too.
log = logging.getLogger("tljh.popularity_contest")

hookimpl = pluggy.HookimplMarker("tljh")

#: Modules the collector service needs in the hub environment (``[collector,hub]``).
SERVICE_MODULES = (
    "popularity_contest.collector.server",
    "prometheus_client",
    "yaml",
    "jupyterhub.services.auth",
)


@hookimpl
def tljh_extra_user_pip_packages() -> list[str]:
    """The reporter for the user environment."""
    return [requirement(package_spec(load_settings()))]


@hookimpl
def tljh_extra_hub_pip_packages() -> list[str]:
    """The collector and the hub login for the hub environment."""
    settings = load_settings()
    extras = HUB_EXTRAS if settings.collector else ()
    return [requirement(package_spec(settings), extras)]


def _run(command: list[str]) -> None:
    log.info("running %s", " ".join(command))
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    except OSError as error:
        raise TLJHPluginError(f"cannot run {command[0]}: {error}") from None
    if done.returncode != 0:
        raise TLJHPluginError(
            f"{' '.join(command)} exited with {done.returncode}:\n{done.stderr.strip()}"
        )
    if done.stdout.strip():
        log.info("%s", done.stdout.strip())


def post_install(paths: Paths, settings: Settings) -> None:
    """Turn the reporter on in the user environment; make the collector's state directory."""
    # -I: the package must come from the environment, not from the current directory.
    command = [str(paths.user_python), "-I", "-m", "popularity_contest"]
    _run([*command, "install", "ipython"])
    _run([*command, "install" if settings.install_site else "uninstall", "site"])
    if settings.collector:
        paths.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)


@hookimpl
def tljh_post_install() -> None:
    """After TLJH installed the packages: ``install ipython`` (and ``site``) for users."""
    post_install(Paths.from_environ(), load_settings())


def missing_modules() -> list[str]:
    """What the collector service needs but this interpreter cannot import."""
    missing = []
    for name in SERVICE_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ImportError:  # a parent package is missing
            found = False
        if not found:
            missing.append(name)
    return missing


@hookimpl
def tljh_custom_jupyterhub_config(c: Any) -> None:
    """At each hub start: the collector as a hub service, when it can run."""
    try:
        settings = load_settings()
        if not settings.collector:
            return
        missing = missing_modules()
        if missing:
            log.error(
                "popularity-contest: collector service left out, %s cannot import %s "
                "(re-run TLJH's installer to install the hub packages)",
                sys.executable,
                ", ".join(missing),
            )
            return
        configure_hub(c, Paths.from_environ(), settings, sys.executable)
    except Exception as error:
        # An exception here stops the hub, and TLJH would restart it in a loop.
        log.error("popularity-contest: collector service left out: %s", error)  # noqa: TRY400
