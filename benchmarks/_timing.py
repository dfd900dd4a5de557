"""Whole-process timing with as little noise from the harness as possible.

A process is started with ``os.posix_spawn`` (no fork of this process, no pipes, output to
/dev/null) and reaped with ``os.wait4``; the wall time between the two is what a user
waits for, and the CPU time (user + system) the kernel reports for the child is a second
figure that other jobs on a busy machine disturb less.

Candidates are always timed in *pairs* with their baseline, one right after the other, so
that drift on a busy machine (other jobs, CPU frequency) hits both alike; the figure is the
median of the per-pair ratios.
"""

from __future__ import annotations

import os
import random
import socket
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

_DEVNULL_ACTIONS = [
    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
    (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
]


def run_once_ns(argv: Sequence[str], env: Mapping[str, str]) -> tuple[int, int]:
    """Wall and CPU time of one process, in nanoseconds; raises unless it exits with 0."""
    start = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], list(argv), dict(env), file_actions=_DEVNULL_ACTIONS)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter_ns() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{argv!r} exited with {code}")
    return elapsed, round((usage.ru_utime + usage.ru_stime) * 1e9)


@dataclass
class Variant:
    """One way of running the workload."""

    name: str
    argv: list[str]
    env: dict[str, str]
    #: Called right before / after each run of this variant (outside the timed span),
    #: e.g. to put a .pth file in place only while this variant runs.
    before: Callable[[], None] | None = None
    after: Callable[[], None] | None = None
    times_ns: list[int] = field(default_factory=list)
    cpu_ns: list[int] = field(default_factory=list)

    def run(self) -> tuple[int, int]:
        if self.before is not None:
            self.before()
        try:
            elapsed, cpu = run_once_ns(self.argv, self.env)
        finally:
            if self.after is not None:
                self.after()
        self.times_ns.append(elapsed)
        self.cpu_ns.append(cpu)
        return elapsed, cpu


@dataclass
class PairResult:
    candidate: Variant
    ratios: list[float]
    cpu_ratios: list[float]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.candidate.times_ns) / 1e6

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def cpu_ms(self) -> float:
        return statistics.median(self.candidate.cpu_ns) / 1e6

    @property
    def cpu_ratio(self) -> float:
        return statistics.median(self.cpu_ratios)


def run_pairs(
    baseline: Variant,
    candidates: Sequence[Variant],
    pairs: int,
    *,
    between: Callable[[], None] | None = None,
    warmup: int = 2,
    seed: int = 0,
) -> list[PairResult]:
    """Time ``pairs`` alternating (baseline, candidate) pairs for every candidate.

    In each round the candidates come in a shuffled order, each right after its own
    baseline run; ``between`` runs after every process (outside the timed span).
    """
    rng = random.Random(seed)
    for _ in range(warmup):  # page cache, bytecode, the dynamic loader's caches
        for variant in (baseline, *candidates):
            variant.run()
            if between is not None:
                between()
    for variant in (baseline, *candidates):
        variant.times_ns.clear()
        variant.cpu_ns.clear()
    ratios: dict[str, list[float]] = {c.name: [] for c in candidates}
    cpu_ratios: dict[str, list[float]] = {c.name: [] for c in candidates}
    order = list(candidates)
    for _ in range(pairs):
        rng.shuffle(order)
        for candidate in order:
            base = baseline.run()
            if between is not None:
                between()
            cand = candidate.run()
            if between is not None:
                between()
            ratios[candidate.name].append(cand[0] / base[0])
            cpu_ratios[candidate.name].append(cand[1] / max(base[1], 1))
    return [PairResult(c, ratios[c.name], cpu_ratios[c.name]) for c in candidates]


class UdpSink:
    """A UDP socket on 127.0.0.1 that the benchmarked reporters send to, held open."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.datagrams = 0

    def drain(self) -> list[bytes]:
        received: list[bytes] = []
        try:
            while True:
                received.append(self.sock.recv(65536))
        except BlockingIOError:
            pass
        self.datagrams += len(received)
        return received

    def wait_for(self, needle: bytes, timeout: float = 2.0) -> list[bytes]:
        """Everything received until a datagram containing ``needle`` (or the timeout)."""
        deadline = time.monotonic() + timeout
        received: list[bytes] = []
        while time.monotonic() < deadline:
            received.extend(self.drain())
            if any(needle in d for d in received):
                break
            time.sleep(0.005)
        return received

    def close(self) -> None:
        self.sock.close()
