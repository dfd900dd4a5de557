"""The collector in JupyterHub's configuration: a managed service, a role, the reporters' port.

``configure_hub`` appends to what TLJH already set (its idle culler stays; nothing is
replaced): the collector as a managed hub service behind the hub's login (``service``; its
``url`` makes the hub register an OAuth client), the service's access scope for the
``user`` role every hub user has (``grant_users``; ``access: admins`` leaves roles alone)
and, when the statsd port is not the default, the reporters' port in the spawner's
environment.
"""

from __future__ import annotations

import logging
from typing import Any

from popularity_contest.collector import settings as serve_settings
from popularity_contest.inprocess import settings as reporter_settings
from popularity_contest.tljh.settings import Paths, Settings

# TLJH logs through the "tljh" logger; a child logger's records go there too.
log = logging.getLogger("tljh.popularity_contest")

SERVICE_NAME = "popularity-contest"
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"


def service(paths: Paths, settings: Settings, python: str) -> dict[str, Any]:
    """The collector as a managed JupyterHub service run by ``python`` (the hub's)."""
    http = f"127.0.0.1:{settings.http_port}"
    return {
        "name": SERVICE_NAME,
        "url": f"http://{http}",  # a url makes the hub register an OAuth client: the login
        "command": [
            python,
            "-m",
            "popularity_contest",
            "serve",
            "--db",
            str(paths.db),
            "--http",
            http,
            "--statsd",
            f"127.0.0.1:{settings.statsd_port}",
            "--environment",
            str(paths.user_python),
        ],
        "environment": {
            serve_settings.SERVE_MIN_PROCESSES: str(settings.min_processes),
            serve_settings.SERVE_METRICS_AUTH: "1",
        },
        "display": True,
        "oauth_no_confirm": True,
    }


def _default_user_scopes() -> list[str]:
    # Redefining the `user` role replaces JupyterHub's default scopes for it: start from them.
    try:
        from jupyterhub.roles import get_default_roles  # type: ignore[import-untyped]

        for role in get_default_roles():
            if role.get("name") == "user":
                return list(role.get("scopes", ["self"]))
    except ImportError:
        pass
    return ["self"]


def grant_users(c: Any) -> None:
    """Add the service's access scope to the ``user`` role every hub user has."""
    roles = c.JupyterHub.load_roles
    existing = [r for r in roles if isinstance(r, dict)] if isinstance(roles, list) else []
    for role in existing:
        if role.get("name") == "user":
            scopes = role.setdefault("scopes", _default_user_scopes())
            if ACCESS_SCOPE not in scopes:
                scopes.append(ACCESS_SCOPE)
            return
    roles.append({"name": "user", "scopes": [*_default_user_scopes(), ACCESS_SCOPE]})


def configure_hub(c: Any, paths: Paths, settings: Settings, python: str) -> None:
    """Append the service (and the role, the reporters' port) to the hub's configuration."""
    services = c.JupyterHub.services
    if isinstance(services, list) and any(
        isinstance(s, dict) and s.get("name") == SERVICE_NAME for s in services
    ):
        log.warning("a service named %s is already configured: left as it is", SERVICE_NAME)
        return
    services.append(service(paths, settings, python))
    if settings.access == "users":
        grant_users(c)
    if settings.statsd_port != reporter_settings.DEFAULT_PORT:
        environment = c.Spawner.environment
        if isinstance(environment, dict):
            environment.setdefault(reporter_settings.PORT, str(settings.statsd_port))
        else:
            environment.update({reporter_settings.PORT: str(settings.statsd_port)})
