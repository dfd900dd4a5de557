"""The collector's statsd side: the UDP socket and the thread that reads it.

``bind_udp`` opens the socket with a large receive buffer (``SO_RCVBUFFORCE`` when allowed,
else ``SO_RCVBUF`` clamped by ``net.core.rmem_max``); ``Receiver`` runs one thread that reads
datagrams with a blocking ``recv_into`` and feeds them to ``Ingest`` (measured: see
benchmarks/), and on ``stop`` drains what the kernel already accepted. ``kernel_drops``
reads how many datagrams the kernel dropped. The address helpers (``format_address``,
``family``, ``bind_problem``) serve the HTTP socket too. Senders' addresses are never looked
at, logged or stored.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import sys
import threading

from popularity_contest.collector.ingest import Ingest

log = logging.getLogger("popularity_contest.serve")

#: Linux's ``SO_RCVBUFFORCE`` (asm-generic/socket.h), which CPython's socket module lacks.
LINUX_SO_RCVBUFFORCE = 33


def format_address(address: tuple[str, int]) -> str:
    """``host:port``, or ``[host]:port`` for IPv6 (as in the ``listening`` log line)."""
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def family(host: str) -> socket.AddressFamily:
    """IPv6 for a host with a colon, else IPv4."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def bind_problem(
    error: OSError, address: tuple[str, int], what: str, flag: str, variable: str
) -> str:
    """One line naming the address, the problem and the flag and variable that change it."""
    where = format_address(address)
    if error.errno == errno.EADDRINUSE:
        problem = f"the {what} address {where} is already in use"
        if what.startswith("statsd"):
            problem += (
                " (another collector, statsd_exporter, or an agent such as netdata or Datadog's,"
                " which also default to UDP 8125?)"
            )
    elif error.errno == errno.EACCES:
        problem = f"not allowed to listen on the {what} address {where} (ports below 1024?)"
    else:
        problem = f"cannot listen on the {what} address {where}: {error.strerror or error}"
    return f"{problem}; choose another with {flag} HOST:PORT or {variable}"


def rcvbufforce_option() -> int | None:
    """The socket option that sets a receive buffer above ``net.core.rmem_max``, or None.

    Linux only (root or CAP_NET_ADMIN); CPython does not export it, hence the constant.
    """
    found = getattr(socket, "SO_RCVBUFFORCE", None)
    if found is not None:
        return int(found)
    return LINUX_SO_RCVBUFFORCE if sys.platform.startswith("linux") else None


def bind_udp(address: tuple[str, int], wanted: int, variable: str) -> socket.socket:
    """A UDP socket bound to ``address`` with a receive buffer of ``wanted`` bytes if granted.

    Logs the buffer granted (a warning when smaller). Raises OSError with one line from
    ``bind_problem`` (naming ``--statsd`` and ``variable``) when it cannot bind.
    """
    host, port = address
    sock = socket.socket(family(host), socket.SOCK_DGRAM)
    # SO_RCVBUFFORCE (root or CAP_NET_ADMIN) may exceed net.core.rmem_max; else clamp.
    force = rcvbufforce_option()
    try:
        if force is None:
            raise PermissionError
        sock.setsockopt(socket.SOL_SOCKET, force, wanted)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, wanted)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise OSError(
            bind_problem(error, (host, port), "statsd (UDP)", "--statsd", variable)
        ) from None
    # Linux reports twice the size granted (it counts its bookkeeping).
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
    if granted < wanted:
        log.warning(
            "statsd receive buffer: %d bytes, not the %d asked for (raise "
            "net.core.rmem_max to absorb longer bursts)",
            granted,
            wanted,
        )
    else:
        log.info("statsd receive buffer: %d bytes", granted)
    return sock


def kernel_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped for this socket (Linux ``/proc/net/udp``), else None."""
    try:
        inode = str(os.fstat(sock.fileno()).st_ino)
        table = "/proc/net/udp6" if sock.family == socket.AF_INET6 else "/proc/net/udp"
        with open(table, encoding="ascii") as lines:
            for line in lines:
                fields = line.split()
                if len(fields) > 12 and fields[9] == inode:
                    return int(fields[12])
    except (OSError, ValueError):
        return None
    return None


class Receiver:
    """The thread (``popcon-statsd``) that feeds each datagram on ``sock`` to ``ingest``.

    ``error`` is None while it works, else one line saying why it stopped (a socket error,
    or a crash logged with its traceback): a collector that counts nothing is unhealthy.
    """

    def __init__(self, sock: socket.socket, ingest: Ingest) -> None:
        self.sock, self.ingest = sock, ingest
        self.error: str | None = None
        self._receiving = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._receiving = True
        self._thread = threading.Thread(target=self._run, name="popcon-statsd", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sock, ingest = self.sock, self.ingest
        size = ingest.max_datagram + 1  # one more byte tells an oversize datagram apart
        buffer = bytearray(size)
        view = memoryview(buffer)
        recv_into = sock.recv_into
        feed = ingest.feed
        try:
            while self._receiving:
                count = recv_into(buffer, size)
                if count:
                    feed(bytes(view[:count]))
            # Shutting down: take what the kernel already accepted, then stop.
            sock.setblocking(False)
            while True:
                try:
                    count = recv_into(buffer, size)
                except BlockingIOError:
                    break
                if count:
                    feed(bytes(view[:count]))
        except OSError as error:
            if self._receiving:
                self.error = f"statsd socket: {error}"
                log.error("statsd receiver stopped: %s", error)  # noqa: TRY400
        except Exception:
            # A bug must not leave a collector that looks healthy but counts nothing.
            self.error = "statsd receiver crashed (see log)"
            log.exception("statsd receiver crashed")

    def stop(self) -> None:
        """Stop after draining what the kernel queued (waits at most 5 s for the thread)."""
        if not self._receiving:
            return
        self._receiving = False
        # Wake the blocking recv with an empty datagram to ourselves.
        host, port = self.sock.getsockname()[:2]
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1" if host == "0.0.0.0" else "::1"
        try:
            with socket.socket(self.sock.family, socket.SOCK_DGRAM) as waker:
                waker.sendto(b"", (host, port))
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(timeout=5)
