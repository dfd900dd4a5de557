"""The hub login on the tornado app: JupyterHub's real HubOAuth and handlers, with the two
calls that go to the hub (code -> token, token -> user) answered by a stub."""

from __future__ import annotations

import logging
import shutil
import tempfile
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from prometheus_client.registry import CollectorRegistry
from tornado.httpclient import HTTPResponse
from tornado.testing import AsyncHTTPTestCase

from popularity_contest.collector.exposition import Health, PopconCollector, registry_for
from popularity_contest.collector.store import Store
from popularity_contest.collector.web import app as web
from popularity_contest.collector.web import hubauth
from popularity_contest.collector.web.api import Api

auth_module = pytest.importorskip("jupyterhub.services.auth")

PREFIX = "/services/popcon/"
SCOPE = "access:services!service=popcon"
HTML = {"Accept": "text/html,*/*"}
HUB_ENV = {
    "JUPYTERHUB_API_TOKEN": "service-secret",
    "JUPYTERHUB_API_URL": "http://127.0.0.1:1/hub/api",
    "JUPYTERHUB_CLIENT_ID": "service-popcon",
    "JUPYTERHUB_SERVICE_PREFIX": PREFIX,
    "JUPYTERHUB_OAUTH_CALLBACK_URL": PREFIX + "oauth_callback",
    "JUPYTERHUB_OAUTH_ACCESS_SCOPES": f'["{SCOPE}"]',
    "JUPYTERHUB_BASE_URL": "/",
}
USERS = {
    "token-alice": {"name": "alice", "kind": "user", "scopes": [SCOPE]},
    "token-bob": {"name": "bob", "kind": "user", "scopes": ["read:users!user=bob"]},
}


async def _value(value: object) -> object:
    return value


class StubHubOAuth(auth_module.HubOAuth):  # type: ignore[misc]
    """HubOAuth as shipped, except that the hub's answers come from ``USERS``."""

    down = False

    def token_for_code(
        self, code: str, *, code_verifier: str | None = None, sync: bool = True
    ) -> Any:
        if code == "bad":
            raise RuntimeError("hub said 400")
        self.exchanged.append((code, code_verifier))
        return f"token-{code}" if sync else _value(f"token-{code}")

    def user_for_token(
        self, token: str, use_cache: bool = True, session_id: str = "", *, sync: bool = True
    ) -> Any:
        if self.down:
            raise RuntimeError("hub unreachable")
        user = USERS.get(token)
        return user if sync else _value(user)


# --- building the HubOAuth ------------------------------------------------------------


def test_hub_oauth_is_configured_from_the_service_variables() -> None:
    auth = hubauth.make_hub_oauth(HUB_ENV)
    assert auth.access_scopes == {SCOPE}
    assert auth.cookie_name == "service-popcon"
    assert auth.cookie_path == PREFIX
    assert auth.oauth_token_url == "http://127.0.0.1:1/hub/api/oauth2/token"  # noqa: S105
    assert urlsplit(auth.login_url).path == "/hub/api/oauth2/authorize"
    named = {**HUB_ENV, "JUPYTERHUB_SERVICE_NAME": "popcon"}
    del named["JUPYTERHUB_OAUTH_ACCESS_SCOPES"]
    assert hubauth.make_hub_oauth(named).access_scopes == {SCOPE}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"JUPYTERHUB_CLIENT_ID": ""}, "JUPYTERHUB_CLIENT_ID"),
        ({"JUPYTERHUB_OAUTH_ACCESS_SCOPES": "access:services"}, "not a JSON list"),
        ({"JUPYTERHUB_OAUTH_ACCESS_SCOPES": "[]"}, "no access scopes"),
    ],
)
def test_a_hub_setup_that_would_let_anyone_in_refuses_to_start(
    change: dict[str, str], message: str
) -> None:
    environ = {key: value for key, value in {**HUB_ENV, **change}.items() if value}
    with pytest.raises(hubauth.HubAuthError, match=message):
        hubauth.make_hub_oauth(environ)


# --- the app behind the login ---------------------------------------------------------


def cookies_of(response: HTTPResponse) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for value in response.headers.get_list("Set-Cookie"):
        jar.load(value)
    return {name: morsel.coded_value for name, morsel in jar.items()}


class HubAppBase(AsyncHTTPTestCase):
    metrics_auth = True

    def get_app(self) -> Any:
        self.tmp = Path(tempfile.mkdtemp(prefix="popcon-hubauth-"))
        self.store = Store.open(self.tmp / "popcon.sqlite3")
        registry = registry_for(PopconCollector(dict, Health), CollectorRegistry())
        self.auth = StubHubOAuth(
            api_token="service-secret",  # noqa: S106 - a fake token for the stub
            oauth_client_id="service-popcon",
            base_url=PREFIX,
            access_scopes={SCOPE},
            oauth_redirect_uri=PREFIX + "oauth_callback",
            api_url="http://127.0.0.1:1/hub/api",
        )
        self.auth.exchanged = []
        context = web.Context(
            Api(self.store, registry), hub_auth=self.auth, metrics_auth=self.metrics_auth
        )
        return web.make_app(context, PREFIX)

    def tearDown(self) -> None:
        super().tearDown()
        self.store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def get(self, path: str, **headers: str) -> HTTPResponse:
        return self.fetch(path, headers=headers, follow_redirects=False, raise_error=False)

    def log_in(self, user: str, target: str = PREFIX + "?window=7d") -> str:
        """The whole handshake; returns the Cookie header a browser would send afterwards."""
        start = self.get(target, **HTML)
        assert start.code == 302, start.body
        location = start.headers["Location"]
        query = parse_qs(urlsplit(location).query)
        assert query["code_challenge_method"] == ["S256"]
        state = query["state"][0]
        cookie = "; ".join(f"{k}={v}" for k, v in cookies_of(start).items())
        done = self.get(
            PREFIX + "oauth_callback?" + urlencode({"code": user, "state": state}), Cookie=cookie
        )
        assert done.code == 302, done.body
        assert done.headers["Location"] == target
        login = cookies_of(done)["service-popcon"]
        return f"service-popcon={login}"


class HubApp(HubAppBase):
    def test_probes_are_open_metrics_and_everything_else_need_a_login(self) -> None:
        assert self.get(PREFIX + "healthz").code == 200
        assert self.get("/healthz").code == 200
        for path in ("metrics", "", "api/v1/packages?format=csv", "api/v1/namespaces"):
            response = self.get(PREFIX + path)
            assert response.code == 401, path
            assert response.headers["WWW-Authenticate"] == 'token realm="JupyterHub"'
            assert b"hub token" in response.body

    def test_a_browser_goes_to_the_hub_then_sees_the_page(self) -> None:
        cookie = self.log_in("alice")
        assert self.auth.exchanged[0][0] == "alice"
        assert self.auth.exchanged[0][1]  # a PKCE verifier went with the code
        page = self.get(PREFIX + "?window=7d", Cookie=cookie)
        assert page.code == 200
        assert b"Which installed packages people import" in page.body
        assert page.headers["Cache-Control"] == "private"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        api = self.get(PREFIX + "api/v1/namespaces", Cookie=cookie)
        assert (api.code, api.headers["Cache-Control"]) == (200, "private")

    def test_a_user_without_the_access_scope_is_refused(self) -> None:
        start = self.get(PREFIX, **HTML)
        state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
        cookie = "; ".join(f"{k}={v}" for k, v in cookies_of(start).items())
        done = self.get(
            PREFIX + "oauth_callback?" + urlencode({"code": "bob", "state": state}), Cookie=cookie
        )
        login = "service-popcon=" + cookies_of(done)["service-popcon"]
        refused = self.get(PREFIX, Cookie=login, **HTML)
        assert refused.code == 403
        assert b"Which installed packages" not in refused.body
        assert b"bob does not have" in refused.body

    def test_scripts_may_send_a_hub_token(self) -> None:
        assert self.get(PREFIX + "metrics", Authorization="token token-alice").code == 200
        assert self.get(PREFIX + "metrics", Authorization="Bearer token-alice").code == 200
        assert self.get(PREFIX + "metrics", Authorization="token token-bob").code == 403
        assert self.get(PREFIX + "metrics", Authorization="token nope").code == 401
        assert self.get(PREFIX + "metrics", Authorization="Basic token-alice").code == 401

    def test_forged_or_broken_callbacks_are_refused(self) -> None:
        for query, status in (
            ("code=alice&state=forged", 403),
            ("code=alice", 400),
            ("state=x", 400),
            ("error=access_denied", 400),
        ):
            response = self.get(PREFIX + "oauth_callback?" + query)
            assert response.code == status, (query, response.body)
        assert self.auth.exchanged == []
        assert "service-popcon" not in cookies_of(self.get(PREFIX + "oauth_callback?code=a"))

    def test_a_code_the_hub_rejects_ends_the_login_with_403(self) -> None:
        start = self.get(PREFIX, **HTML)
        state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
        cookie = "; ".join(f"{k}={v}" for k, v in cookies_of(start).items())
        done = self.get(
            PREFIX + "oauth_callback?" + urlencode({"code": "bad", "state": state}), Cookie=cookie
        )
        assert done.code == 403
        assert b"did not accept the login" in done.body

    def test_a_cookie_not_signed_by_this_process_is_ignored(self) -> None:
        forged = self.get(PREFIX, Cookie="service-popcon=token-alice")
        assert forged.code == 401

    def test_an_unreachable_hub_refuses_rather_than_serves(self) -> None:
        self.auth.down = True
        response = self.get(PREFIX + "api/v1/namespaces", Authorization="token token-alice")
        assert response.code == 502
        assert b"namespaces" not in response.body

    def test_plotly_is_cached_and_revalidated(self) -> None:
        first = self.get(PREFIX + "static/plotly.min.js", **{"Accept-Encoding": "gzip"})
        assert first.code == 200
        assert first.headers["Cache-Control"] == "public, max-age=86400"
        assert first.headers["X-Content-Type-Options"] == "nosniff"
        assert b"plotly.js v" in first.body[:500]
        again = self.get(
            PREFIX + "static/plotly.min.js", **{"If-None-Match": first.headers["Etag"]}
        )
        assert (again.code, again.body) == (304, b"")
        assert self.get(PREFIX + "static/../../../etc/passwd").code == 404
        assert self.get(PREFIX + "static/widgetbundle.js").code == 404


class OpenMetrics(HubAppBase):
    metrics_auth = False

    def test_metrics_open_when_asked(self) -> None:
        assert self.get(PREFIX + "metrics").code == 200
        assert self.get(PREFIX + "api/v1/namespaces").code == 401


@pytest.fixture
def quiet_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def test_no_log_line_names_a_client(tmp_path: Path, quiet_log: pytest.LogCaptureFixture) -> None:
    case = HubApp("test_forged_or_broken_callbacks_are_refused")
    result = case.run()
    assert result is not None
    assert result.wasSuccessful(), result.errors + result.failures
    case = HubApp("test_an_unreachable_hub_refuses_rather_than_serves")
    assert case.run().wasSuccessful()  # type: ignore[union-attr]
    assert quiet_log.records  # something was logged (the unreachable hub)
    assert "127.0.0.1" not in quiet_log.text
    assert "Traceback" not in quiet_log.text
