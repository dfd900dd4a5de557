"""The collector's HTTP side at run time: the listening sockets and the thread that serves them.

``bind_http`` opens the sockets (a deep backlog; one line from ``receiver.bind_problem``
naming ``--http`` and its variable when it cannot bind); ``HttpThread`` runs tornado's
``HTTPServer`` for the application ``collector.web.app.make_app`` built, on an event loop of
its own in one thread (``popcon-http``), and on ``stop`` ends the loop and closes the open
connections (2 s at most). What the handlers answer is ``collector.web.app``'s; when this
starts and stops is ``collector.server``'s.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from typing import Any

from popularity_contest.collector.receiver import bind_problem, family

HTTP_BACKLOG = 1024  # connections the kernel queues before the event loop accepts them
#: Limits of one connection (seconds, bytes): a slow or greedy client cannot hold the server.
IDLE_CONNECTION_SECONDS = 30
BODY_SECONDS = 30
MAX_BODY_BYTES = 64 * 1024
MAX_BUFFER_BYTES = 1024 * 1024


def bind_http(address: tuple[str, int], variable: str) -> list[socket.socket]:
    """The listening sockets for ``address``; OSError with one line naming ``variable``."""
    from tornado.netutil import bind_sockets

    host, port = address
    try:
        return bind_sockets(port, host, family=family(host), backlog=HTTP_BACKLOG)
    except OSError as error:
        raise OSError(bind_problem(error, address, "HTTP", "--http", variable)) from None


class HttpThread:
    """The thread (``popcon-http``) that serves ``application`` on ``sockets``.

    ``xheaders``: trust ``X-Forwarded-*`` (behind the hub's proxy: the scheme the browser
    used). ``start`` returns once the loop runs (10 s at most); ``stop`` waits at most 5 s.
    """

    def __init__(self, application: Any, sockets: list[socket.socket], *, xheaders: bool) -> None:
        self.application = application
        self.sockets = sockets
        self.xheaders = xheaders
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="popcon-http", daemon=True
        )
        self._thread.start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        from tornado.httpserver import HTTPServer

        # The event loop shares the GIL with the receiver and the query threads: switching
        # every 1 ms instead of 5 ms keeps answers from the cache quick while a query runs.
        sys.setswitchinterval(0.001)
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        server = HTTPServer(
            self.application,
            xheaders=self.xheaders,
            idle_connection_timeout=IDLE_CONNECTION_SECONDS,
            body_timeout=BODY_SECONDS,
            max_body_size=MAX_BODY_BYTES,
            max_buffer_size=MAX_BUFFER_BYTES,
        )
        server.add_sockets(self.sockets)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            server.stop()
            try:
                loop.run_until_complete(asyncio.wait_for(server.close_all_connections(), timeout=2))
            except (asyncio.TimeoutError, RuntimeError):
                pass
            loop.close()

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(loop.stop)
            except RuntimeError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
