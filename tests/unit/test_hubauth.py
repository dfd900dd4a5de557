"""The hub login glue: JupyterHub's real HubOAuth, with its two calls to the hub stubbed."""

from __future__ import annotations

from collections.abc import Mapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.registry import CollectorRegistry

from popularity_contest.collector.store import Store
from popularity_contest.collector.web import hubauth
from popularity_contest.collector.web.api import Api, Response, strip_prefix

auth_module = pytest.importorskip("jupyterhub.services.auth")

PREFIX = "/services/popcon/"
SCOPE = "access:services!service=popcon"
HTML = {"accept": "text/html,*/*"}
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


class StubHubOAuth(auth_module.HubOAuth):  # type: ignore[misc]
    """HubOAuth as shipped, except that the hub's answers come from ``USERS``."""

    exchanged: list[tuple[str, str | None]]
    down = False

    def token_for_code(self, code: str, *, code_verifier: str | None = None) -> str:
        self.exchanged.append((code, code_verifier))
        if code == "bad":
            raise RuntimeError("hub said 400")
        return f"token-{code}"

    def user_for_token(self, token: str, session_id: str = "", **_: object) -> Any:
        if self.down:
            raise RuntimeError("hub unreachable")
        return USERS.get(token)


class App:
    """The guarded application: records what reaches it."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def respond(self, target: str, headers: Mapping[str, str]) -> Response:
        self.seen.append(target)
        return Response(200, "text/plain", b"served")


def make_gate(**options: Any) -> tuple[hubauth.HubGate, App, StubHubOAuth]:
    auth = StubHubOAuth(
        api_token="service-secret",  # noqa: S106 - a fake token for the stub
        oauth_client_id="service-popcon",
        base_url=PREFIX,
        access_scopes={SCOPE},
        oauth_redirect_uri=PREFIX + "oauth_callback",
    )
    auth.exchanged = []
    app = App()
    options.setdefault("secret", b"k" * 32)
    return hubauth.HubGate(auth, app, **options), app, auth


def set_cookies(response: Response) -> dict[str, Any]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in response.headers:
        if name == "Set-Cookie":
            jar.load(value)
    return dict(jar.items())


def header(response: Response, name: str) -> str:
    return next(value for key, value in response.headers if key == name)


def log_in(gate: hubauth.HubGate, user: str, target: str = PREFIX + "?window=7d") -> str:
    """The whole handshake; returns the Cookie header a browser would send afterwards."""
    start = gate.respond(target, HTML)
    assert start.status == 302
    state = parse_qs(urlsplit(header(start, "Location")).query)["state"][0]
    state_cookies = set_cookies(start)
    cookie = "; ".join(f"{name}={morsel.coded_value}" for name, morsel in state_cookies.items())
    done = gate.respond(
        PREFIX + "oauth_callback?" + urlencode({"code": user, "state": state}), {"cookie": cookie}
    )
    assert done.status == 302, done.body
    assert header(done, "Location") == target
    login = set_cookies(done)["service-popcon"]
    return f"service-popcon={login.coded_value}"


# --- environment ---------------------------------------------------------------------


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


# --- the gate ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "protect_metrics", "open_"),
    [
        ("healthz", False, True),
        ("metrics", False, True),
        ("healthz", True, True),
        ("metrics", True, False),
        ("", False, False),
        ("api/v1/packages?format=csv", False, False),
        ("static/plotly.min.js", False, False),
    ],
)
def test_only_probes_and_metrics_are_open(path: str, protect_metrics: bool, open_: bool) -> None:
    gate, app, _ = make_gate(protect_metrics=protect_metrics)
    response = gate.respond(PREFIX + path, {})
    assert (response.status == 200) is open_
    assert bool(app.seen) is open_


def test_a_browser_without_login_goes_to_the_hub_with_state_and_pkce() -> None:
    gate, app, auth = make_gate()
    response = gate.respond(PREFIX + "?hub=a", HTML)
    assert response.status == 302
    location = urlsplit(header(response, "Location"))
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    assert location.path == "/hub/api/oauth2/authorize"
    assert query["client_id"] == "service-popcon"
    assert query["redirect_uri"] == PREFIX + "oauth_callback"
    assert query["code_challenge_method"] == "S256"
    assert auth.get_next_url(query["state"]) == PREFIX + "?hub=a"
    cookie = set_cookies(response)["service-popcon-oauth-state"]
    assert (cookie["path"], cookie["httponly"], cookie["samesite"]) == (PREFIX, True, "Lax")
    assert cookie["max-age"] == "600"
    assert not cookie["secure"]
    assert header(response, "Cache-Control") == "no-store"
    assert app.seen == []


@pytest.mark.parametrize(
    ("headers", "public_url", "secure"),
    [
        ({"x-forwarded-proto": "https"}, "", True),
        ({"x-forwarded-proto": "https, http"}, "", True),
        ({"x-scheme": "http"}, "", False),
        ({}, "https://hub.example.org", True),
        ({"x-forwarded-proto": "https"}, "http://10.0.0.1:8000", False),
    ],
)
def test_cookies_are_secure_when_the_browser_used_https(
    headers: dict[str, str], public_url: str, secure: bool
) -> None:
    gate, _, _ = make_gate(public_url=public_url)
    response = gate.respond(PREFIX, {**HTML, **headers})
    assert bool(set_cookies(response)["service-popcon-oauth-state"]["secure"]) is secure


def test_scripts_without_a_token_get_401_not_a_redirect() -> None:
    gate, app, _ = make_gate()
    response = gate.respond(PREFIX + "api/v1/packages", {"accept": "application/json"})
    assert response.status == 401
    assert header(response, "WWW-Authenticate").startswith("token")
    assert app.seen == []


def test_the_handshake_logs_in_and_the_cookie_then_serves_the_page() -> None:
    gate, app, auth = make_gate()
    cookie = log_in(gate, "alice")
    ((code, verifier),) = auth.exchanged
    assert code == "alice"
    assert verifier
    response = gate.respond(PREFIX + "api/v1/namespaces", {"cookie": cookie})
    assert (response.status, response.body) == (200, b"served")
    assert header(response, "Cache-Control") == "private"
    assert app.seen == [PREFIX + "api/v1/namespaces"]


def test_the_callback_clears_the_state_cookie_and_sets_a_login_cookie() -> None:
    gate, _, _ = make_gate()
    start = gate.respond(PREFIX, HTML)
    state = parse_qs(urlsplit(header(start, "Location")).query)["state"][0]
    state_cookie = set_cookies(start)["service-popcon-oauth-state"]
    done = gate.respond(
        PREFIX + f"oauth_callback?code=alice&state={state}",
        {"cookie": f"service-popcon-oauth-state={state_cookie.coded_value}"},
    )
    cookies = set_cookies(done)
    assert cookies["service-popcon-oauth-state"]["max-age"] == "0"
    login = cookies["service-popcon"]
    assert (login["path"], login["httponly"]) == (PREFIX, True)
    assert login.value != "token-alice"
    assert gate._unsign("service-popcon", login.value, 1) == "token-alice"  # signed, not secret
    # The state is used up: replaying the same callback is refused.
    again = gate.respond(
        PREFIX + f"oauth_callback?code=alice&state={state}",
        {"cookie": f"service-popcon-oauth-state={state_cookie.coded_value}"},
    )
    assert again.status == 403


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("code=alice&state=made-up", 403),
        ("code=alice", 400),
        ("state=x", 400),
        ("error=access_denied&error_description=no", 400),
    ],
)
def test_forged_or_broken_callbacks_are_refused(query: str, status: int) -> None:
    gate, _, auth = make_gate()
    gate.respond(PREFIX, HTML)  # a real login is under way, with its own state
    response = gate.respond(PREFIX + "oauth_callback?" + query, {"cookie": ""})
    assert response.status == status
    assert auth.exchanged == []


def test_a_state_cookie_from_another_login_does_not_match() -> None:
    gate, _, auth = make_gate()
    first = gate.respond(PREFIX, HTML)
    second = gate.respond(PREFIX, HTML)
    state_two = parse_qs(urlsplit(header(second, "Location")).query)["state"][0]
    cookie_one = set_cookies(first)["service-popcon-oauth-state"]
    response = gate.respond(
        PREFIX + f"oauth_callback?code=alice&state={state_two}",
        {"cookie": f"service-popcon-oauth-state={cookie_one.coded_value}"},
    )
    assert response.status == 403
    assert auth.exchanged == []


def test_a_second_tab_gets_its_own_state_cookie() -> None:
    gate, _, _ = make_gate()
    first = set_cookies(gate.respond(PREFIX, HTML))["service-popcon-oauth-state"]
    second = gate.respond(
        PREFIX, {**HTML, "cookie": f"service-popcon-oauth-state={first.coded_value}"}
    )
    (name,) = set_cookies(second)
    assert name.startswith("service-popcon-oauth-state-")


def test_a_hub_user_without_the_access_scope_is_refused() -> None:
    gate, app, _ = make_gate()
    cookie = log_in(gate, "bob")
    response = gate.respond(PREFIX, {**HTML, "cookie": cookie})
    assert response.status == 403
    assert SCOPE in response.body.decode()
    assert app.seen == []


@pytest.mark.parametrize(
    ("authorization", "served"),
    [
        ("token token-alice", True),
        ("Bearer token-alice", True),
        ("token token-bob", False),
        ("token nobody", False),
        ("Basic token-alice", False),
    ],
)
def test_scripts_may_send_a_hub_token(authorization: str, served: bool) -> None:
    gate, app, _ = make_gate(protect_metrics=True)
    response = gate.respond(PREFIX + "metrics", {"authorization": authorization})
    assert (response.status == 200) is served
    assert bool(app.seen) is served


def test_a_cookie_not_signed_by_this_process_is_ignored() -> None:
    gate, app, _ = make_gate()
    cookie = log_in(gate, "alice")
    other, _, _ = make_gate(secret=b"x" * 32)
    assert other.respond(PREFIX, {**HTML, "cookie": cookie}).status == 302
    assert gate.respond(PREFIX, {**HTML, "cookie": "service-popcon=token-alice"}).status == 302
    assert app.seen == []


def test_an_unreachable_hub_refuses_rather_than_serves() -> None:
    gate, app, auth = make_gate()
    cookie = log_in(gate, "alice")
    auth.down = True
    response = gate.respond(PREFIX, {**HTML, "cookie": cookie})
    assert response.status == 502
    assert app.seen == []


def test_a_code_the_hub_rejects_ends_the_login_with_403() -> None:
    gate, _, _ = make_gate()
    start = gate.respond(PREFIX, HTML)
    state = parse_qs(urlsplit(header(start, "Location")).query)["state"][0]
    cookie = set_cookies(start)["service-popcon-oauth-state"]
    response = gate.respond(
        PREFIX + f"oauth_callback?code=bad&state={state}",
        {"cookie": f"service-popcon-oauth-state={cookie.coded_value}"},
    )
    assert response.status == 403


@given(cookie=st.text(max_size=200), authorization=st.text(max_size=100))
def test_no_header_gets_past_the_gate_without_a_valid_token(
    cookie: str, authorization: str
) -> None:
    gate, app, _ = make_gate()
    response = gate.respond(PREFIX, {"cookie": cookie, "authorization": authorization})
    assert response.status in (401, 403)
    assert app.seen == []


# --- the API's side: prefix, headers, static caching -----------------------------------


@pytest.mark.parametrize(
    ("target", "prefix", "expected"),
    [
        ("/services/popcon/healthz", PREFIX, "/healthz"),
        ("/services/popcon/", PREFIX, "/"),
        ("/services/popcon", PREFIX, "/"),
        ("/services/popcon?window=7d", PREFIX, "/?window=7d"),
        ("/services/popconx/", PREFIX, "/services/popconx/"),
        ("/healthz", "", "/healthz"),
        ("/healthz", PREFIX, "/healthz"),
    ],
)
def test_strip_prefix(target: str, prefix: str, expected: str) -> None:
    assert strip_prefix(target, prefix) == expected


def test_static_files_get_an_etag_a_day_of_caching_and_304(tmp_path: Path) -> None:
    body = b"x" * 1000

    def page(target: str) -> tuple[int, str, bytes] | None:
        return (200, "application/javascript", body) if target.startswith("/static/") else None

    with Store.open(str(tmp_path / "s.db")) as store:
        api = Api(store, CollectorRegistry(), page=page, prefix=PREFIX)
        first = api.respond(PREFIX + "static/plotly.min.js", {})
        assert first.body == body
        headers = dict(first.headers)
        assert headers["Cache-Control"] == "public, max-age=86400"
        etag = headers["ETag"]
        again = api.respond(PREFIX + "static/plotly.min.js", {"if-none-match": f'"old", {etag}'})
        assert (again.status, again.body, dict(again.headers)["ETag"]) == (304, b"", etag)
        assert (
            api.respond(PREFIX + "static/plotly.min.js", {"if-none-match": '"old"'}).status == 200
        )
        healthz = api.respond(PREFIX + "healthz", {})
        assert healthz.status == 200
        assert healthz.headers == ()
