"""JupyterHub's ``HubOAuth`` configured for ``serve`` run as a hub service.

JupyterHub's proxy routes ``/services/<name>/`` to a service but does not authenticate the
requests: the service checks the user itself, with the OAuth flow the hub offers. All of that
is JupyterHub's own code: ``HubOAuth`` (state, PKCE, exchanging a code for a token, asking the
hub who a token belongs to, scope checks, signed cookies) and the tornado handlers
``HubOAuthenticated`` and ``HubOAuthCallbackHandler`` that ``collector.web.app`` uses. This
module only builds the ``HubOAuth`` from the ``JUPYTERHUB_*`` settings that
``collector.settings`` checked, and refuses a setup that would let every hub user in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from popularity_contest.collector.settings import API_TOKEN
from popularity_contest.errors import PopconError


class HubAuthError(PopconError, ValueError):
    """The hub login cannot be set up; the message says what is missing."""


def make_hub_oauth(hub: Mapping[str, str]) -> Any:
    """JupyterHub's ``HubOAuth`` configured from the service's ``JUPYTERHUB_*`` variables."""
    try:
        from jupyterhub.services.auth import HubOAuth  # type: ignore[import-untyped]
    except ImportError:
        raise HubAuthError(
            "running as a JupyterHub service needs JupyterHub's HubOAuth: "
            "pip install 'popularity-contest[hub]'"
        ) from None
    if not hub.get("JUPYTERHUB_CLIENT_ID"):
        raise HubAuthError(
            "JUPYTERHUB_CLIENT_ID is not set: give the service a 'url' in "
            "c.JupyterHub.services so the hub makes it an OAuth client"
        )
    settings: dict[str, object] = {
        "api_token": hub[API_TOKEN],
        "oauth_client_id": hub["JUPYTERHUB_CLIENT_ID"],
        "base_url": hub.get("JUPYTERHUB_SERVICE_PREFIX", "/"),
        "hub_host": hub.get("JUPYTERHUB_HOST", ""),
    }
    if "JUPYTERHUB_API_URL" in hub:
        settings["api_url"] = hub["JUPYTERHUB_API_URL"]
    if "JUPYTERHUB_BASE_URL" in hub:
        settings["hub_prefix"] = hub["JUPYTERHUB_BASE_URL"].rstrip("/") + "/hub/"
    if "JUPYTERHUB_OAUTH_CALLBACK_URL" in hub:
        settings["oauth_redirect_uri"] = hub["JUPYTERHUB_OAUTH_CALLBACK_URL"]
    scopes = hub.get("JUPYTERHUB_OAUTH_ACCESS_SCOPES") or hub.get("JUPYTERHUB_OAUTH_SCOPES")
    if scopes:
        try:
            settings["access_scopes"] = set(json.loads(scopes))
        except (ValueError, TypeError):
            raise HubAuthError(
                f"JUPYTERHUB_OAUTH_ACCESS_SCOPES: not a JSON list: {scopes!r}"
            ) from None
    elif "JUPYTERHUB_SERVICE_NAME" in hub:
        settings["access_scopes"] = {f"access:services!service={hub['JUPYTERHUB_SERVICE_NAME']}"}
    auth = HubOAuth(**settings)
    if not auth.access_scopes:
        # HubOAuth would let every hub user in; a usage page should not.
        raise HubAuthError("no access scopes: set JUPYTERHUB_OAUTH_ACCESS_SCOPES")
    return auth
