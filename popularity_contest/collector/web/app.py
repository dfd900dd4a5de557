"""The collector's HTTP side on tornado: one ``RequestHandler`` per endpoint.

==========================  ======================================================
``/``                       the page (``page.render``: a tornado template)
``/static/plotly.min.js``   plotly.js from the ``plotly`` wheel (``StaticFileHandler``:
                            ETag, 304, gzip, a day of ``Cache-Control``)
``/api/v1/popularity``      ``Api.popularity`` (JSON or CSV)
``/api/v1/packages``        ``Api.packages``
``/api/v1/namespaces``      ``Api.namespaces``
``/metrics``                ``prometheus_client``'s exposition of the store's totals
``/healthz``                200 or 503 with the problem (never behind a login)
``/oauth_callback``         JupyterHub's ``HubOAuthCallbackHandler`` (under a hub login)
==========================  ======================================================

Run as a JupyterHub service, every path is also served under ``JUPYTERHUB_SERVICE_PREFIX``
and the page, the API (and ``/metrics`` unless opened) need a hub login: JupyterHub's own
``HubOAuthenticated`` mixin does it, a browser is sent through the hub's OAuth flow and a
script without a token gets 401 (a hub user without the access scope 403).

Work that reads the store runs on a small thread pool (the store serialises its queries),
so the event loop keeps accepting connections. Nothing logs a client's address: tornado's
access log is off and errors are logged as one line without the request's origin. Every
answer carries ``X-Content-Type-Options: nosniff``; answers behind a login are ``private``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import tornado.web
from tornado.httputil import HTTPServerRequest

from popularity_contest.collector.store import StoreError
from popularity_contest.collector.web import page
from popularity_contest.collector.web.api import Api, BadRequestError, Response

log = logging.getLogger("popularity_contest.serve")
T = TypeVar("T")

STATIC_CACHE_SECONDS = 86400
QUERY_THREADS = 2  # the store answers one query at a time anyway


@dataclass
class Context:
    """What the handlers need, shared by all of them."""

    api: Api
    #: ``page.render`` arguments that do not come from the request.
    environment: str | None = None
    min_processes: int = 1
    #: Warnings the page shows on top (e.g. the series cap reached).
    warnings: Callable[[], list[str]] = list
    #: JupyterHub's ``HubOAuth`` when a hub login guards the page and API, else None.
    hub_auth: Any = None
    metrics_auth: bool = False
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(QUERY_THREADS, "popcon-query")
    )


class _NoHubLogin:
    """Stands in for HubOAuthenticated without the `hub` extra (hub logins are refused at
    start-up then). A class of its own: `object` before RequestHandler has no valid MRO."""


def _hub_mixin() -> type:
    try:
        from jupyterhub.services.auth import HubOAuthenticated  # type: ignore[import-untyped]
    except ImportError:
        return _NoHubLogin
    return HubOAuthenticated  # type: ignore[no-any-return]


class BaseHandler(_hub_mixin(), tornado.web.RequestHandler):  # type: ignore[misc]
    """Common headers, quiet errors, store work off the event loop, optional hub login."""

    guarded = True  # needs a hub login (when there is one)

    def initialize(self, context: Context) -> None:
        self.context = context
        if context.hub_auth is not None:
            self.hub_auth = context.hub_auth

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.clear_header("Server")

    # --- login ----------------------------------------------------------------------
    def _needs_login(self) -> bool:
        return self.context.hub_auth is not None and self.guarded

    async def prepare(self) -> None:
        if not self._needs_login():
            return
        auth = self.context.hub_auth
        try:
            # HubOAuth's async path: the hub is asked without blocking the event loop
            # (answers cached by HubOAuth for a few minutes).
            model = await auth.get_user(self, sync=False)
        except Exception as error:
            # An unreachable or failing hub: refuse (never serve unchecked), keep running.
            log.warning("hub login check failed: %s", error)
            raise tornado.web.HTTPError(502, "cannot check your login with JupyterHub") from None
        user = None
        if model:
            try:
                user = self.check_hub_user(model)  # HubOAuthenticated's scope check
            except Exception:
                name = model.get("name", "this user")
                scopes = ", ".join(sorted(auth.access_scopes))
                raise tornado.web.HTTPError(403, f"{name} does not have {scopes}") from None
        self._hub_auth_user_cache = user
        if user:
            return
        if self.request.method in ("GET", "HEAD") and "text/html" in self.request.headers.get(
            "Accept", ""
        ):
            self.redirect(self.get_login_url())
            return
        raise tornado.web.HTTPError(
            401, "log in through JupyterHub, or send a hub token: Authorization: token ..."
        )

    # --- answers ------------------------------------------------------------------------
    async def off_loop(self, work: Callable[[], T]) -> T:
        """Run ``work`` (which reads the store) on the query threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.context.executor, work)

    def params(self) -> dict[str, str]:
        """Query parameters, the last of each name, as text (undecodable bytes replaced)."""
        return {
            name: values[-1].decode("utf-8", "replace")
            for name, values in self.request.query_arguments.items()
        }

    def reply(self, response: Response) -> None:
        self.set_status(response.status)
        self.set_header("Content-Type", response.content_type)
        if self._needs_login():
            self.set_header("Cache-Control", "private")
        elif not self._headers.get("Cache-Control"):
            self.set_header("Cache-Control", "no-cache")
        self.finish(response.body)

    async def answer(self, work: Callable[[], Response]) -> None:
        try:
            response = await self.off_loop(work)
        except BadRequestError as error:
            response = Response(400, "application/json; charset=utf-8", _error(str(error)))
        except StoreError as error:
            response = Response(503, "application/json; charset=utf-8", _error(str(error)))
        self.reply(response)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        reason = self._reason
        info = kwargs.get("exc_info")
        if info is not None and isinstance(info[1], tornado.web.HTTPError) and info[1].log_message:
            reason = info[1].log_message
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'token realm="JupyterHub"')
        self.finish(f"{reason}\n")

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        # One line, no traceback, no client address. A bug's traceback is still logged
        # (it says where), but never who asked.
        if isinstance(value, tornado.web.HTTPError):
            return
        log.error("error answering %s %s: %r", self.request.method, self.request.path, value)

    def head(self, *args: str) -> Awaitable[None] | None:
        return self.get(*args)


def _error(text: str) -> bytes:
    import json

    return json.dumps({"error": text}, ensure_ascii=False).encode("utf-8") + b"\n"


class MetricsHandler(BaseHandler):
    @property
    def guarded(self) -> bool:  # type: ignore[override]
        return self.context.metrics_auth

    async def get(self) -> None:
        accept = self.request.headers.get("Accept", "")
        await self.answer(lambda: self.context.api.metrics(accept))


class HealthHandler(BaseHandler):
    guarded = False

    async def get(self) -> None:
        await self.answer(self.context.api.health)
        self.set_header("Cache-Control", "no-store")


class PopularityHandler(BaseHandler):
    async def get(self) -> None:
        params = self.params()
        shared = self.context.api.shared("popularity", params, self.context.executor.submit)
        if shared is not None:  # no trip to the query threads
            self.reply(shared)
            return
        await self.answer(lambda: self.context.api.popularity(params))


class PackagesHandler(BaseHandler):
    async def get(self) -> None:
        params = self.params()
        shared = self.context.api.shared("packages", params, self.context.executor.submit)
        if shared is not None:
            self.reply(shared)
            return
        await self.answer(lambda: self.context.api.packages(params))


class NamespacesHandler(BaseHandler):
    async def get(self) -> None:
        await self.answer(self.context.api.namespaces)


class PageHandler(BaseHandler):
    async def get(self) -> None:
        params = self.params()
        context = self.context
        warnings = context.warnings()

        def work() -> Response:
            body = page.render(
                context.api.store,
                params,
                environment=context.environment,
                min_processes=context.min_processes,
                now=context.api.clock(),
                warnings=warnings,
            )
            return Response(200, "text/html; charset=utf-8", body)

        # Everyone asking the same page until the store is next written shares one render.
        key = ("page", tuple(sorted(params.items())), *warnings)
        shared = context.api.cache.peek(key, work, context.executor.submit)
        if shared is not None:
            self.reply(shared)
            return
        await self.answer(lambda: context.api.cache.get(key, work))


class PlotlyHandler(tornado.web.StaticFileHandler):
    """plotly.js: ETag/304 and gzip by tornado; cached a day; nosniff."""

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.clear_header("Server")

    def get_cache_time(self, path: str, modified: Any, mime_type: str) -> int:
        return STATIC_CACHE_SECONDS

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", f"public, max-age={STATIC_CACHE_SECONDS}")

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        return


@functools.cache
def _callback_handler() -> type[tornado.web.RequestHandler]:
    """JupyterHub's ``HubOAuthCallbackHandler`` with our headers and quiet errors."""
    from jupyterhub.services.auth import HubOAuthCallbackHandler

    class CallbackHandler(HubOAuthCallbackHandler):  # type: ignore[misc]
        def initialize(self, context: Context) -> None:
            self.context = context
            self.hub_auth = context.hub_auth

        set_default_headers = BaseHandler.set_default_headers
        write_error = BaseHandler.write_error
        log_exception = BaseHandler.log_exception

        async def prepare(self) -> None:
            # Who is logged in already, asked without blocking the event loop (the handler
            # only uses it to send a finished login on to the page, which checks again).
            try:
                model = await self.hub_auth.get_user(self, sync=False)
            except Exception:
                model = None
            self._hub_auth_user_cache = model

        async def get(self) -> None:
            try:
                await super().get()
            except tornado.web.HTTPError:
                raise
            except Exception as error:
                # An expired or replayed code: the hub answers 400 and HubOAuth raises.
                log.warning("hub login: the hub did not exchange the code: %s", error)
                raise tornado.web.HTTPError(
                    403, "JupyterHub did not accept the login: open the page again"
                ) from None

    return CallbackHandler


class NotFoundHandler(BaseHandler):
    guarded = False

    def prepare(self) -> None:  # type: ignore[override]
        self.set_status(404)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(_error(f"no such endpoint: {self.request.path}"))


def _no_access_log(handler: tornado.web.RequestHandler) -> None:
    """Requests are never logged: on a hub, a client's address identifies a user."""


def make_app(context: Context, prefix: str = "/") -> tornado.web.Application:
    """The application; every route also under ``prefix`` (a hub's service prefix)."""
    routes: list[tuple[str, type, dict[str, Any]]] = []
    handlers: list[tuple[str, type[tornado.web.RequestHandler]]] = [
        ("", PageHandler),
        ("index.html", PageHandler),
        ("metrics", MetricsHandler),
        ("healthz", HealthHandler),
        ("api/v1/popularity", PopularityHandler),
        ("api/v1/packages", PackagesHandler),
        ("api/v1/namespaces", NamespacesHandler),
    ]
    bases = ["/"] if prefix.rstrip("/") == "" else [prefix.rstrip("/") + "/", "/"]
    for base in bases:
        for path, handler in handlers:
            routes.append((_escape(base + path), handler, {"context": context}))
        directory = page.plotly_directory()
        if directory is not None:
            routes.append(
                (
                    _escape(base + "static/") + r"(plotly\.min\.js)",
                    PlotlyHandler,
                    {"path": directory},
                )
            )
        if context.hub_auth is not None:
            routes.append(
                (_escape(base + "oauth_callback"), _callback_handler(), {"context": context})
            )
        if prefix.rstrip("/") and base == "/":
            # The bare service prefix without its slash, as a browser may ask for it.
            routes.append((_escape(prefix.rstrip("/")), PageHandler, {"context": context}))
    settings: dict[str, Any] = {
        "log_function": _no_access_log,
        "compress_response": True,
        "default_handler_class": NotFoundHandler,
        "default_handler_args": {"context": context},
        "xsrf_cookies": False,
    }
    if context.hub_auth is not None:
        import secrets

        # Signs HubOAuth's cookies: a restart logs everyone out, and the next page view
        # logs them in again through the hub without a prompt.
        settings["cookie_secret"] = secrets.token_bytes(32)
        settings["hub_auth"] = context.hub_auth
    return tornado.web.Application(routes, **settings)


def _escape(path: str) -> str:
    import re

    return re.escape(path)


@functools.cache
def _silence_tornado() -> None:
    # tornado.general logs malformed requests with the client's address (info level).
    logging.getLogger("tornado.access").disabled = True
    logging.getLogger("tornado.general").setLevel(logging.ERROR)


def prepare_logging() -> None:
    """Keep tornado from ever logging a client's address."""
    _silence_tornado()


__all__ = ["Context", "HTTPServerRequest", "make_app", "prepare_logging"]
