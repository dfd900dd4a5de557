"""What ``popularity-contest check`` finds, as typed records.

``CheckResult`` gathers them (``as_dict()`` is the ``--format json`` shape); ``Endpoint``
tells what answers on ``--expect-collector``'s URL by its metric names. ``commands.check``
fills them in (``gather``) and prints them (``render``).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from popularity_contest import names
from popularity_contest.activation import ActivationFile
from popularity_contest.inprocess import settings as config

#: statsd_exporter's own metrics start with this; ours with ``names.COLLECTOR_PREFIX``.
STATSD_EXPORTER_PREFIX = "statsd_exporter_"
#: Evidence counters (see ``EVIDENCE``) read from ``/metrics``; None when absent.
Evidence = dict[str, float | None]


class Endpoint(enum.Enum):
    """What answers on ``--expect-collector``'s URL, judged by its ``/metrics``."""

    POPULARITY_CONTEST = "popularity-contest"  # popcon_collector_* metrics
    STATSD_EXPORTER = "statsd_exporter"  # statsd_exporter_* metrics
    OTHER = "other"  # an HTTP server, but neither of ours

    @classmethod
    def of(cls, metrics_text: str) -> Endpoint:
        for line in metrics_text.splitlines():
            name = line.split("# TYPE ", 1)[-1]
            if name.startswith(names.COLLECTOR_PREFIX):
                return cls.POPULARITY_CONTEST
            if name.startswith(STATSD_EXPORTER_PREFIX):
                return cls.STATSD_EXPORTER
        return cls.OTHER


@dataclass
class Settings:
    """The reporter's settings as the target environment reads them."""

    host: str
    port: int
    prefix: str
    eager: bool
    disabled: bool
    problem: str | None

    @classmethod
    def of(cls, cfg: config.ReporterConfig) -> Settings:
        return cls(cfg.host, cfg.port, cfg.prefix, cfg.eager, cfg.disabled, cfg.problem)


@dataclass
class Probe:
    """What ``check_probe.py`` answered from another environment's interpreter."""

    python: str
    prefix: str
    version: str  # the interpreter's, major.minor.micro
    popularity_contest: str | None  # the installed version; None: not importable there
    reporter: Settings | None  # None: that version has no reporter settings to read
    reporter_error: str | None


@dataclass
class Target:
    """The environment checked: this interpreter's (``here``) or one named by a flag."""

    python: str
    prefix: str
    here: bool
    probe: Probe | None  # None when ``here`` or when the prefix has no runnable Python


@dataclass
class Report:
    """One line the reporter would send: ``name`` is the statsd name."""

    package: str
    kind: str  # site or user
    distribution: str
    name: str


@dataclass
class Resolution:
    address: str | None = None
    error: str | None = None
    seconds: float | None = None


@dataclass
class TestCounter:
    __test__ = False  # not a pytest class

    name: str
    sent: bool = False
    error: str | None = None


@dataclass
class CollectorCheck:
    """``--expect-collector``: what answered at ``url`` and whether it counted the test."""

    url: str
    kind: Endpoint | None = None  # None: nothing answered
    received: bool = False
    error: str | None = None
    evidence: str | None = None  # the counter that moved (see EVIDENCE)
    before: Evidence | None = None
    after: Evidence | None = None


@dataclass
class CheckResult:
    """Everything ``check`` found; ``as_dict()`` is what ``--format json`` prints."""

    config: Settings
    environment: Target
    activation: list[ActivationFile]
    active_in_this_process: bool | None  # None for another environment
    would_report: list[Report] | None  # None for another environment
    processes_counter: str
    test_counter: TestCounter
    resolve: Resolution
    collector: CollectorCheck | None = None
    #: ``{"host"|"port": why}``: a variable set to something unusable (see unusable_settings).
    unusable: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape (keys as in earlier versions, plus ``environment``)."""
        activation: dict[str, Any] = {
            entry.method: {
                "path": entry.path,
                "installed": entry.installed,
                "current": entry.current,
            }
            for entry in self.activation
        }
        activation["active_in_this_process"] = self.active_in_this_process
        collector = None
        if self.collector is not None:
            collector = asdict(self.collector)
            collector["kind"] = None if self.collector.kind is None else self.collector.kind.value
        environment = asdict(self.environment)
        return {
            "config": asdict(self.config),
            "python": self.environment.python,
            "prefix": self.environment.prefix,
            "environment": environment,
            "activation": activation,
            "would_report": (
                None if self.would_report is None else [asdict(r) for r in self.would_report]
            ),
            "processes_counter": self.processes_counter,
            "test_counter": asdict(self.test_counter),
            "resolve": asdict(self.resolve),
            "collector": collector,
            "unusable": dict(self.unusable),
            "healthy": self.healthy,
            "problems": list(self.problems),
            "warnings": list(self.warnings),
        }


@dataclass
class Reading:
    kind: Endpoint
    evidence: Evidence
