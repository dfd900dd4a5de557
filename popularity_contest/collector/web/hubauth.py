"""A JupyterHub login in front of the collector's page and API (``serve`` as a hub service).

JupyterHub's proxy routes ``/services/<name>/`` to a service but does not authenticate the
requests: the service checks the user itself, with the OAuth authorization-code flow the hub
offers. The hub-side work (state, PKCE, exchanging a code for a token, asking the hub who a
token belongs to, scope checks, cookie names and paths) is done by JupyterHub's own
``HubOAuth``, through its framework-independent methods; this module is only the glue to
``http.server``:

* ``/healthz`` stays open (liveness probes); ``/metrics`` too unless ``protect_metrics``
  (Prometheus then sends a hub token with the access scope: ``Authorization: token ...``).
* A request with a hub token (``Authorization: token|bearer ...`` or the signed, HttpOnly
  login cookie scoped to the service prefix) whose scopes include the service's access
  scopes is served; a hub user without them gets 403.
* Without a token, a browser (``Accept: text/html``) is redirected to the hub's authorize URL
  with a fresh state (kept server-side, bound to the browser by a state cookie) and a PKCE
  challenge; anything else gets 401.
* ``<prefix>/oauth_callback`` checks the state, exchanges the code for a token, sets the
  login cookie and redirects back to the page first asked for.

Cookies are signed with a key made at start-up (``tornado.web.create_signed_value``, as
``HubOAuth`` does): a restart logs everyone out, and the next page view logs them in again
through the hub without a prompt. The hub's answers are cached by ``HubOAuth`` (5 minutes).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit

from popularity_contest.collector.web.api import Response, strip_prefix
from popularity_contest.errors import PopconError

log = logging.getLogger("popularity_contest.serve")

from popularity_contest.collector.settings import API_TOKEN  # noqa: E402

OPEN_PATHS = frozenset({"/healthz", "/metrics"})
CALLBACK_PATH = "/oauth_callback"
COOKIE_MAX_AGE_DAYS = 30.0
STATE_MAX_AGE_SECONDS = 600


class HubAuthError(PopconError, ValueError):
    """The hub login cannot be set up; the message says what is missing."""


class Responder(Protocol):
    def respond(self, target: str, headers: Mapping[str, str]) -> Response: ...


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


def _cookies(headers: Mapping[str, str]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def _text(status: int, text: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response(
        status,
        "text/plain; charset=utf-8",
        text.encode("utf-8") + b"\n",
        (("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"), *headers),
    )


def _redirect(location: str, cookies: list[str]) -> Response:
    headers = [("Location", location), ("Cache-Control", "no-store")]
    headers += [("Set-Cookie", cookie) for cookie in cookies]
    return Response(302, "text/plain; charset=utf-8", b"", tuple(headers))


class HubGate:
    """Serves ``app`` to hub users holding the access scopes; runs the OAuth handshake."""

    def __init__(
        self,
        auth: Any,
        app: Responder,
        *,
        protect_metrics: bool = False,
        secret: bytes | None = None,
        public_url: str = "",
    ) -> None:
        #: A ``jupyterhub.services.auth.HubOAuth`` (or a test double with its methods).
        self.auth = auth
        self.app = app
        self.open_paths = OPEN_PATHS - {"/metrics"} if protect_metrics else OPEN_PATHS
        self.secret = secret if secret is not None else secrets.token_bytes(32)
        #: The hub's public URL (``JUPYTERHUB_PUBLIC_URL``): https there means Secure cookies.
        self.public_url = public_url
        self.prefix = str(auth.base_url).rstrip("/")
        # HubOAuth keeps pending logins in a dict that is not thread-safe (it purges expired
        # entries while iterating): http.server answers each request on its own thread.
        self._states = threading.Lock()

    # --- the request path ------------------------------------------------------------
    def respond(self, target: str, headers: Mapping[str, str]) -> Response:
        path = urlsplit(strip_prefix(target, self.prefix)).path
        if path in self.open_paths:
            return self.app.respond(target, headers)
        try:
            if path == CALLBACK_PATH:
                return self._callback(target, headers)
            return self._guarded(target, headers)
        except Exception as error:
            # HubOAuth reports an unreachable or failing hub as tornado's HTTPError; whatever
            # it is, the request is refused (never served unchecked) and the server lives on.
            log.warning("hub login check failed: %s", error)
            return _text(502, "cannot check your login with JupyterHub; try again later")

    def _guarded(self, target: str, headers: Mapping[str, str]) -> Response:
        cookies = _cookies(headers)
        token = self._header_token(headers) or self._cookie_token(cookies)
        user = (
            self.auth.user_for_token(token, session_id=cookies.get("jupyterhub-session-id", ""))
            if token
            else None
        )
        if user is None:
            if "text/html" in headers.get("accept", ""):
                return self._login(target, headers, cookies)
            return _text(
                401,
                "log in through JupyterHub, or send a hub token: Authorization: token ...",
                (("WWW-Authenticate", 'token realm="JupyterHub"'),),
            )
        if not self.auth.check_scopes(self.auth.access_scopes, user):
            scopes = ", ".join(sorted(self.auth.access_scopes))
            return _text(403, f"{user.get('name', 'this user')} does not have {scopes}")
        response = self.app.respond(target, headers)
        if not any(name.lower() == "cache-control" for name, _ in response.headers):
            # Per-user answers: no shared cache may keep them.
            response = Response(
                response.status,
                response.content_type,
                response.body,
                (*response.headers, ("Cache-Control", "private")),
            )
        return response

    def _header_token(self, headers: Mapping[str, str]) -> str:
        scheme, _, token = headers.get("authorization", "").strip().partition(" ")
        return token.strip() if scheme.lower() in ("token", "bearer") else ""

    def _cookie_token(self, cookies: Mapping[str, str]) -> str:
        return self._unsign(
            self.auth.cookie_name, cookies.get(self.auth.cookie_name), COOKIE_MAX_AGE_DAYS
        )

    # --- OAuth ----------------------------------------------------------------------
    def _login(
        self, target: str, headers: Mapping[str, str], cookies: Mapping[str, str]
    ) -> Response:
        auth = self.auth
        next_url = target if target.startswith("/") and not target.startswith("//") else ""
        extra: dict[str, str] = {}
        params: dict[str, str] = {}
        if auth.pkce_enabled:
            verifier, challenge, method = auth.generate_pkce_code_challenge()
            extra["code_verifier"] = verifier
            params.update(code_challenge=challenge, code_challenge_method=method)
        cookie_name = auth.state_cookie_name
        if cookie_name in cookies:
            # Another login is under way in this browser (two tabs): do not overwrite its state.
            cookie_name = f"{cookie_name}-{secrets.token_hex(4)}"
            extra["cookie_name"] = cookie_name
        with self._states:
            state = auth.generate_state(next_url or None, **extra)
        params["state"] = state
        separator = "&" if "?" in auth.login_url else "?"
        location = auth.login_url + separator + urlencode(params)
        cookie = self._cookie(cookie_name, self._sign(cookie_name, state), headers)
        cookie[cookie_name]["max-age"] = STATE_MAX_AGE_SECONDS
        return _redirect(location, [cookie[cookie_name].OutputString()])

    def _callback(self, target: str, headers: Mapping[str, str]) -> Response:
        auth = self.auth
        query = {k: v[-1] for k, v in parse_qs(urlsplit(target).query).items()}
        if "error" in query:
            return _text(
                400,
                f"JupyterHub refused the login: {query.get('error_description') or query['error']}",
            )
        state, code = query.get("state", ""), query.get("code", "")
        if not state or not code:
            return _text(400, "the login callback lacks its code or state: open the page again")
        cookies = _cookies(headers)
        with self._states:
            cookie_name = auth.get_state_cookie_name(state)
        max_days = STATE_MAX_AGE_SECONDS / 86400
        if self._unsign(cookie_name, cookies.get(cookie_name), max_days) != state:
            # Not the browser that started this login (or too late): a forged callback.
            return _text(403, "login state does not match: open the page again")
        with self._states:
            next_url = auth.get_next_url(state)
            verifier = auth.get_code_verifier(state)
            auth.clear_oauth_state(state)
        if auth.pkce_enabled and verifier is None:
            # Every state we issue carries a verifier: this one was used up or has expired.
            return _text(
                403, "this login was already completed or has expired: open the page again"
            )
        try:
            token = auth.token_for_code(code, code_verifier=verifier)
        except Exception as error:
            # An expired or replayed code: the hub answers 400, HubOAuth raises.
            log.warning("hub login: the hub did not exchange the code: %s", error)
            return _text(403, "JupyterHub did not accept the login: open the page again")
        user = auth.user_for_token(token, session_id=cookies.get("jupyterhub-session-id", ""))
        if user is None:
            return _text(403, "JupyterHub did not recognise the new login: open the page again")
        set_cookies = []
        for name in cookies:
            if name.startswith(auth.state_cookie_name):
                gone = self._cookie(name, "", headers)
                gone[name]["max-age"] = 0
                set_cookies.append(gone[name].OutputString())
        login = self._cookie(auth.cookie_name, self._sign(auth.cookie_name, token), headers)
        days = self._cookie_option("expires_days")
        if isinstance(days, (int, float)):
            login[auth.cookie_name]["max-age"] = int(days * 86400)
        set_cookies.append(login[auth.cookie_name].OutputString())
        return _redirect(next_url or auth.base_url, set_cookies)

    # --- cookies ------------------------------------------------------------------------
    def _sign(self, name: str, value: str) -> str:
        from tornado.web import create_signed_value

        return create_signed_value(self.secret, name, value).decode("ascii")

    def _unsign(self, name: str, value: str | None, max_age_days: float) -> str:
        if not value:
            return ""
        from tornado.web import decode_signed_value

        decoded = decode_signed_value(self.secret, name, value, max_age_days=max_age_days)
        return decoded.decode("ascii", "replace") if decoded else ""

    def _cookie_option(self, name: str) -> object:
        options = getattr(self.auth, "cookie_options", None) or {}
        return options.get(name)

    def _secure(self, headers: Mapping[str, str]) -> bool:
        if self.auth.cookie_host_prefix_enabled or self._cookie_option("secure"):
            return True
        if self.public_url:
            return urlsplit(self.public_url).scheme == "https"
        for name in ("x-scheme", "x-forwarded-proto"):
            # The hub's proxy says which scheme the browser used (the first hop's, if several).
            value = headers.get(name, "").split(",")[0].strip().lower()
            if value:
                return value == "https"
        return False

    def _cookie(self, name: str, value: str, headers: Mapping[str, str]) -> SimpleCookie:
        jar: SimpleCookie = SimpleCookie()
        jar[name] = value
        morsel = jar[name]
        morsel["path"] = self.auth.cookie_path
        morsel["httponly"] = True
        morsel["samesite"] = str(self._cookie_option("samesite") or "Lax")
        if self._secure(headers):
            morsel["secure"] = True
        return jar
