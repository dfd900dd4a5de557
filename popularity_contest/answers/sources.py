"""Where ``report``, ``unused`` and the page read counts from: the store or a Prometheus server.

Both sources answer the same questions for a window ``[start, end)``:

* ``packages(window, namespace)``: ``{(namespace, package): processes that imported it}``
* ``direct(window, namespace)``: ``{(namespace, package): processes whose own code imported
  it}`` (the ``directly_imported_package`` counter, issue 15; empty where the reporter does
  not send it)
* ``processes(window, namespace)``: ``{namespace: processes reported}``

and, for ``unused`` and ``report --by distribution``, ``distributions(window, namespace)``:
``{(namespace, distribution): processes}`` from the ``library_used`` counter (empty where
the reporter does not send it).

``namespace=None`` means every hub. The store sums its hourly/daily buckets; Prometheus is
asked with the dashboard's own PromQL (:mod:`popularity_contest.answers.promql`), through
its HTTP API with ``urllib`` so no client library is needed. The two must agree: the dashboard and
``report --prometheus`` give the same numbers for the same range.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Protocol

from popularity_contest.answers.promql import PROMQL, promql
from popularity_contest.answers.window import Window
from popularity_contest.collector.store import Store, StoreError, Total
from popularity_contest.errors import PopconError, UsageError
from popularity_contest.names import (
    CLUSTER_LABEL,
    DIRECTLY_IMPORTED_PACKAGE,
    IMPORTED_PACKAGE,
    LIBRARY_USED,
    PROCESSES_REPORTED,
)

#: Processes per distribution (``library_used``), counted the dashboard's way.
DISTRIBUTIONS_PROMQL = PROMQL["distributions"]


class SourceError(PopconError):
    """Counts could not be read; the message says from where and why."""


class Source(Protocol):
    def packages(self, span: Window, namespace: str | None) -> dict[tuple[str, str], float]: ...

    def direct(self, span: Window, namespace: str | None) -> dict[tuple[str, str], float]: ...

    def processes(self, span: Window, namespace: str | None) -> dict[str, float]: ...

    def distributions(
        self, span: Window, namespace: str | None
    ) -> dict[tuple[str, str], float]: ...

    def close(self) -> None: ...


class StoreSource:
    """Counts from the embedded collector's SQLite store.

    ``cluster`` keeps only the series of one source archived by ``popularity-contest
    archive`` (their ``cluster`` label; ``""``: what ``serve`` received itself).
    """

    def __init__(self, store: Store, *, owned: bool = False, cluster: str | None = None) -> None:
        self.store = store
        self._owned = owned
        self.cluster = cluster

    def _totals(self, span: Window, namespace: str | None, metric: str) -> list[Total]:
        try:
            totals = self.store.totals(span.start, span.end, namespace, metric)
        except StoreError as error:
            raise SourceError(str(error)) from None
        if self.cluster is None:
            return totals
        return [t for t in totals if t.labels.get(CLUSTER_LABEL, "") == self.cluster]

    @classmethod
    def open(cls, path: str) -> StoreSource:
        try:
            return cls(Store.open(path, create=False), owned=True)
        except StoreError as error:
            raise SourceError(str(error)) from None

    def _by(
        self, metric: str, label: str, span: Window, namespace: str | None
    ) -> dict[tuple[str, str], float]:
        """``{(namespace, label's value): sum}`` of ``metric`` in the window."""
        found: dict[tuple[str, str], float] = {}
        for total in self._totals(span, namespace, metric):
            key = (total.labels.get("namespace", ""), total.labels.get(label, ""))
            found[key] = found.get(key, 0.0) + total.value
        return found

    def packages(self, span: Window, namespace: str | None) -> dict[tuple[str, str], float]:
        return self._by(IMPORTED_PACKAGE, "package", span, namespace)

    def direct(self, span: Window, namespace: str | None) -> dict[tuple[str, str], float]:
        return self._by(DIRECTLY_IMPORTED_PACKAGE, "package", span, namespace)

    def processes(self, span: Window, namespace: str | None) -> dict[str, float]:
        found: dict[str, float] = {}
        for total in self._totals(span, namespace, PROCESSES_REPORTED):
            key = total.labels.get("namespace", "")
            found[key] = found.get(key, 0.0) + total.value
        return found

    def distributions(self, span: Window, namespace: str | None) -> dict[tuple[str, str], float]:
        return self._by(LIBRARY_USED, "distribution", span, namespace)

    def clusters(self) -> list[str]:
        """The ``cluster`` labels in the store, sorted (``""``: series ``serve`` received)."""
        try:
            return self.store.label_values(CLUSTER_LABEL)
        except StoreError as error:
            raise SourceError(str(error)) from None

    def close(self) -> None:
        if self._owned:
            self.store.close()


class PrometheusSource:
    """Counts from a Prometheus server's HTTP API (``/api/v1/query`` at the window's end)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise SourceError(f"{url}: a Prometheus URL starts with http:// or https://")
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query(self, expression: str, at: float) -> list[dict[str, object]]:
        data = urllib.parse.urlencode({"query": expression, "time": f"{at:.3f}"}).encode()
        request = urllib.request.Request(  # noqa: S310 - the operator's own Prometheus URL
            self.url + "/api/v1/query",
            data=data,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                document = json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:300]
            raise SourceError(f"{self.url}: HTTP {error.code}: {detail}") from None
        except (OSError, ValueError) as error:
            raise SourceError(f"{self.url}: {error}") from None
        if not isinstance(document, dict) or document.get("status") != "success":
            raise SourceError(f"{self.url}: query failed: {str(document)[:300]}")
        result = document.get("data", {}).get("result", [])
        return result if isinstance(result, list) else []

    def _vector(
        self, name: str, span: Window, namespace: str | None
    ) -> list[tuple[Mapping[str, str], float]]:
        rows: list[tuple[Mapping[str, str], float]] = []
        for sample in self.query(promql(name, span, namespace), span.end):
            metric = sample.get("metric", {})
            value = sample.get("value", [0, "0"])
            if isinstance(metric, dict) and isinstance(value, list) and len(value) == 2:
                rows.append((metric, float(value[1])))
        return rows

    def _by(
        self, name: str, label: str, span: Window, namespace: str | None
    ) -> dict[tuple[str, str], float]:
        """``{(namespace, label's value): count}`` from the query ``PROMQL[name]``."""
        found: dict[tuple[str, str], float] = {}
        for metric, value in self._vector(name, span, namespace):
            key = (metric.get("namespace", ""), metric.get(label, ""))
            found[key] = found.get(key, 0.0) + value
        return found

    def packages(self, span: Window, namespace: str | None) -> dict[tuple[str, str], float]:
        return self._by("packages", "package", span, namespace)

    def direct(self, span: Window, namespace: str | None) -> dict[tuple[str, str], float]:
        return self._by("direct", "package", span, namespace)

    def processes(self, span: Window, namespace: str | None) -> dict[str, float]:
        found: dict[str, float] = {}
        for metric, value in self._vector("processes", span, namespace):
            key = metric.get("namespace", "")
            found[key] = found.get(key, 0.0) + value
        return found

    def distributions(self, span: Window, namespace: str | None) -> dict[tuple[str, str], float]:
        return self._by("distributions", "distribution", span, namespace)

    def close(self) -> None:
        return


def open_source(db: str | None, prometheus: str | None) -> Source:
    """The source the ``--db``/``--prometheus`` flags name (default: the collector's store)."""
    if prometheus:
        return PrometheusSource(prometheus)
    if db:
        return StoreSource.open(db)
    from popularity_contest.collector.settings import SERVE_DB, default_db_path

    # The store `serve` uses when run with the same environment (a systemd unit's
    # STATE_DIRECTORY, PYTHON_POPCONTEST_SERVE_DB), else the default path.
    path = os.environ.get(SERVE_DB, "").strip() or default_db_path()
    try:
        return StoreSource.open(path)
    except SourceError as error:
        if os.path.exists(path):
            raise
        raise SourceError(
            f"{error}; name the collector's store with --db PATH (or {SERVE_DB}),"
            " or read Prometheus with --prometheus URL"
        ) from None


def require_hub(source: Source, span: Window, hub: str | None) -> None:
    """``UsageError`` naming the hubs that did report when ``hub`` reported nothing in
    ``span`` (a typo, or a hub that is quiet): the operator sees what to choose from."""
    if hub is None or source.processes(span, hub):
        return
    known = sorted(source.processes(span, None))
    if hub in known:
        return
    listed = ", ".join(repr(name) for name in known) if known else "none"
    raise UsageError(f"no hub {hub!r} reported in this window; hubs that did: {listed}")
