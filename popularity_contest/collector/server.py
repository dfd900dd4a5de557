"""``popularity-contest serve``: UDP statsd in, SQLite store, HTTP out.

Structure (as in uvicorn): a ``Config`` built once from the command line and the
environment, and a ``Server`` with ``startup`` (load the mapping, open the store, bind both
sockets), a main loop (flush pending increments to the store every ``flush_interval``
seconds; roll hourly buckets up to daily once an hour) and ``shutdown`` (stop receiving,
drain what the kernel already queued, flush, close). SIGTERM and SIGINT end the main loop,
so both flush before the process exits: 0, or 1 when counts could not be written.

The store tells the truth about itself: a flush that fails (read-only files, a full disk, a
store deleted or replaced underneath) keeps the counts in memory and retries at every flush
interval, while ``/healthz`` answers 503 naming the problem, the log says so (when it starts,
once a minute while it lasts, and when it ends) and ``popcon_collector_store_writable`` is 0.
A deleted store is never recreated empty behind the operator's back.

This module owns when things happen (start-up, the flush loop, signals, shutdown) and
what is wired to what. Threads: one receives datagrams (``collector.receiver``: blocking
``recv_into``, a large ``SO_RCVBUF``) and feeds ``Ingest`` (measured: see benchmarks/); one
runs tornado's event loop for HTTP (``collector.web.serving``; the handlers are
``collector.web.app``'s), which hands store reads to a few query threads; the main thread
flushes. One line per notable event is logged to stderr; the ``listening
statsd=HOST:PORT http=HOST:PORT`` line says the collector is ready (with the ports actually
bound, so port 0 works). Senders' addresses are never looked at, logged or stored.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from types import FrameType

from popularity_contest.collector.exposition import (
    Health,
    HealthDetails,
    PopconCollector,
    registry_for,
)
from popularity_contest.collector.ingest import Ingest
from popularity_contest.collector.mapping import Mapper, MappingError
from popularity_contest.collector.receiver import (
    Receiver,
    bind_udp,
    format_address,
    kernel_drops,
)
from popularity_contest.collector.settings import SERVE_HTTP, SERVE_STATSD, Config, ConfigError
from popularity_contest.collector.store import SeriesKey, Store, StoreError
from popularity_contest.collector.web import app as web
from popularity_contest.collector.web import hubauth
from popularity_contest.collector.web.api import Api
from popularity_contest.collector.web.serving import HttpThread, bind_http

log = logging.getLogger("popularity_contest.serve")

ROLL_UP_EVERY = 3600.0
REPEAT_STORE_PROBLEM = 60.0  # seconds between log lines about the same store problem


class Server:
    """The collector: ``run()`` = ``startup()``, ``main_loop()``, ``shutdown()``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.should_exit = threading.Event()
        self.store: Store | None = None
        self.ingest: Ingest | None = None
        self.udp: socket.socket | None = None
        self.http_sockets: list[socket.socket] = []
        self._context: web.Context | None = None
        self.receiver: Receiver | None = None
        self.http: HttpThread | None = None
        self._flush_lock = threading.Lock()
        self._flush_errors = 0
        self._store_problem: str | None = None
        self._store_problem_logged = 0.0
        self._signal: str | None = None

    # --- lifecycle ---------------------------------------------------------------------
    def run(self) -> int:
        # Before startup: a signal that arrives once `listening` is logged must flush.
        self.install_signal_handlers()
        try:
            self.startup()
        except (MappingError, StoreError, ConfigError, hubauth.HubAuthError, OSError) as error:
            log.error("cannot start: %s", error)  # noqa: TRY400 - one clear line, no traceback
            self._close()
            return 1
        try:
            self.main_loop()
        finally:
            unwritten = self.shutdown()
        return 1 if unwritten else 0

    def startup(self) -> None:
        config = self.config
        mapper = Mapper.load(config.mapping)
        for note in config.notes:
            log.warning("%s", note)
        log.info("mapping: %d rules from %s", len(mapper.rules), mapper.source)
        known = self._open_store()
        self.ingest = Ingest(
            mapper, max_series=config.max_series, known=known, max_datagram=config.max_datagram
        )
        self.udp = (
            bind_udp(config.statsd, config.rcvbuf, SERVE_STATSD)
            if config.statsd is not None
            else None
        )
        hub = config.hub
        self._context = self._web_context(mapper)
        prefix = (hub or {}).get("JUPYTERHUB_SERVICE_PREFIX", "/")
        application = web.make_app(self._context, prefix)
        web.prepare_logging()
        self.http_sockets = bind_http(config.http, SERVE_HTTP)
        if self.udp is not None:
            self.receiver = Receiver(self.udp, self.ingest)
            self.receiver.start()
        else:
            log.info("--no-statsd: nothing is received; page, API and /metrics read the store")
        # Behind the hub's proxy (a hub login): X-Forwarded-Proto is the browser's scheme.
        self.http = HttpThread(application, self.http_sockets, xheaders=hub is not None)
        self.http.start()
        log.info(
            "listening statsd=%s http=%s",
            format_address(self.udp.getsockname()) if self.udp is not None else "off",
            format_address(self.http_sockets[0].getsockname()),
        )

    def _open_store(self) -> list[SeriesKey]:
        """Open the store, roll hourly buckets up, log what it holds; return its series."""
        config = self.config
        store = self.store = Store.open(config.db)
        known = store.series_keys()
        try:
            removed = store.roll_up(config.hourly_retention_days)
        except StoreError as error:
            # Readable but not writable: receive anyway, keep counts in memory, say so.
            removed = 0
            self._store_failed(str(error))
        log.info(
            "store: %s (%d series%s)",
            store.path,
            len(known),
            f", rolled up {removed} hourly buckets" if removed else "",
        )
        return known

    def _web_context(self, mapper: Mapper) -> web.Context:
        """What the HTTP side serves: the API over the store and registry, the hub login."""
        config, store = self.config, self.store
        if store is None:
            raise RuntimeError("the web side before the store")
        registry = registry_for(PopconCollector(self.series, self.health, mapper.help))
        api = Api(
            store,
            registry,
            healthy=self.problem,
            details=self.health_details,
            min_processes=config.min_processes,
        )
        hub_auth = None
        if config.hub is not None:
            hub_auth = hubauth.make_hub_oauth(config.hub)
            log.info(
                "JupyterHub service: page and API need a hub login with %s; /healthz%s open",
                ", ".join(sorted(hub_auth.access_scopes)),
                "" if config.metrics_auth else " and /metrics",
            )
        return web.Context(
            api,
            environment=config.environment,
            min_processes=config.min_processes,
            warnings=self.warnings,
            hub_auth=hub_auth,
            metrics_auth=config.metrics_auth,
        )

    def install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # embedded in a test or another program: the caller stops us
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle_signal)

    def _handle_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signal = signal.Signals(signum).name
        self.should_exit.set()

    def main_loop(self) -> None:
        config = self.config
        next_roll_up = time.monotonic() + ROLL_UP_EVERY
        while not self.should_exit.wait(config.flush_interval):
            self.flush()
            if time.monotonic() >= next_roll_up:
                next_roll_up += ROLL_UP_EVERY
                self._roll_up()

    def shutdown(self) -> int:
        """Stop, flush, close; return how many series had counts that could not be written."""
        log.info("stopping%s", f" on {self._signal}" if self._signal else "")
        if self.receiver is not None:
            self.receiver.stop()
        if self.http is not None:
            self.http.stop()
        if self._context is not None:
            self._context.executor.shutdown(wait=False, cancel_futures=True)
        self.flush()
        unwritten = 0
        if self.ingest is not None:
            pending = self.ingest.pending()
            unwritten = len(pending)
            if pending:
                log.error(
                    "%d counts in %d series could not be written to %s: lost (%s)",
                    round(sum(pending.values())),
                    len(pending),
                    self.config.db,
                    self._store_problem or "store unavailable",
                )
            ingest = self.ingest
            log.info(
                "stopped: %d lines received, %d stored, %d refused, %d series%s",
                ingest.lines,
                ingest.stored,
                sum(ingest.refused.values()),
                ingest.series_count(),
                f", {self._flush_errors} flush errors" if self._flush_errors else "",
            )
        self._close()
        return unwritten

    def _close(self) -> None:
        for sock in self.http_sockets:
            sock.close()
        if self.udp is not None:
            self.udp.close()
        if self.store is not None:
            try:
                self.store.close()
            except StoreError as error:
                log.error("%s", error)  # noqa: TRY400 - one clear line
            self.store = None

    # --- flushing and reading ----------------------------------------------------------
    def flush(self) -> None:
        """Store pending increments in one transaction; keep them for later on failure."""
        if self.ingest is None or self.store is None:
            return
        store, ingest = self.store, self.ingest
        with self._flush_lock:
            increments: dict[SeriesKey, float] = {}
            try:
                if store.changed_elsewhere():
                    # `popularity-contest prune` removed series: forget them here too.
                    known = store.series_keys()
                    ingest.reset_known(known)
                    log.info("store changed by another program: %d series now", len(known))
                increments = ingest.take()
                if increments:
                    store.add(increments)
                elif self._store_problem is not None:
                    store.probe_write()  # nothing to write: is the store writable again?
            except StoreError as error:
                if increments:
                    self._flush_errors += 1
                    ingest.give_back(increments)
                self._store_failed(str(error))
                try:
                    store.reconnect()  # picks up permissions fixed meanwhile
                except StoreError:
                    pass
                return
            problem = store.file_problem()  # also when idle: a deleted store is news
            if problem is not None:
                self._store_failed(problem)
                return
            if self._store_problem is not None:
                log.info("store writable again: %s", store.path)
                self._store_problem = None

    def _store_failed(self, problem: str) -> None:
        now = time.monotonic()
        if problem != self._store_problem or now - self._store_problem_logged > (
            REPEAT_STORE_PROBLEM
        ):
            pending = self.ingest.pending() if self.ingest is not None else {}
            log.error(
                "cannot write the store, counts kept in memory and retried (%d series waiting): %s",
                len(pending),
                problem,
            )
            self._store_problem_logged = now
        self._store_problem = problem

    def health_details(self) -> HealthDetails | None:
        """Series in use and the cap, and what waits to be written (for ``/healthz``)."""
        if self.ingest is None:
            return None
        return HealthDetails.of(self.ingest.stats(), self.config.max_series)

    def warnings(self) -> list[str]:
        """What the page shows on top: the series cap reached, a store that cannot be written."""
        found: list[str] = []
        details = self.health_details()
        if details is not None and details.warning is not None:
            found.append(details.warning)
        problem = self.problem()
        if problem is not None:
            found.append(f"This collector is unhealthy: {problem}")
        return found

    def problem(self) -> str | None:
        """What makes the collector unhealthy (for ``/healthz``), or None."""
        receive_error = self.receiver.error if self.receiver is not None else None
        return receive_error or self._store_problem

    def _roll_up(self) -> None:
        if self.store is None:
            return
        try:
            removed = self.store.roll_up(self.config.hourly_retention_days)
        except StoreError as error:
            log.error("roll-up failed: %s", error)  # noqa: TRY400
            return
        if removed:
            log.info("rolled up %d hourly buckets into daily ones", removed)

    def series(self) -> dict[SeriesKey, float]:
        """All-time total of each series: stored plus pending (consistent with flushes)."""
        if self.store is None or self.ingest is None:
            return {}
        with self._flush_lock:
            totals = {
                (t.name, tuple(sorted(t.labels.items()))): t.value
                for t in self.store.series_totals()
            }
            for key, value in self.ingest.pending().items():
                totals[key] = totals.get(key, 0.0) + value
        return totals

    def health(self) -> Health:
        """The collector's own counters and state, for ``/metrics``."""
        if self.ingest is None:
            return Health()
        return Health(
            ingest=self.ingest.stats(),
            series_limit=self.config.max_series,
            flush_errors=self._flush_errors,
            store_problem=self._store_problem,
            kernel_drops=kernel_drops(self.udp) if self.udp is not None else None,
        )
