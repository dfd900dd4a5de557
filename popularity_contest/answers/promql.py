"""The PromQL that counts: one definition for the Grafana dashboard and ``report --prometheus``.

``deploy/grafana/build_dashboard.py`` imports :func:`counted`; ``PROMQL`` holds the
queries the answers send, as Grafana templates (``$hub``, ``$__range``), and
:func:`promql` substitutes them the way Grafana does. What "exact" means, the lookback and
the known limits: ``docs/concepts/counting-prometheus.md``.
"""

from __future__ import annotations

import re

from popularity_contest.answers.window import Window
from popularity_contest.names import (
    DIRECTLY_IMPORTED_PACKAGE,
    IMPORTED_PACKAGE,
    LIBRARY_USED,
    PROCESSES_REPORTED,
)

#: How far before a window Prometheus is asked for a series' previous sample (a PromQL
#: duration). A series scraped again after a longer gap (Prometheus down, the target
#: unreachable) counts its whole value, like a new series. docs/concepts/counting-prometheus.md
LOOKBACK = "1d"


def counted(metric: str, window: str, lookback: str = LOOKBACK) -> str:
    """PromQL: per series, the counts that became visible in the ``window`` ending at query time.

    The dashboard's counting expression (deploy/grafana/build_dashboard.py imports it),
    character for character: tests/unit/test_report_promql.py fails if they drift apart.
    ``window`` and ``lookback`` are PromQL durations (or Grafana's ``$__range``); the series
    are ``metric{namespace=~"$hub"}``. Not ``increase()``, which extrapolates and misses
    the first count of a new series.

    Exact means: each sample in the window adds what the counter gained since the sample
    before it (its previous sample in the window or, for the first, the last one at most
    ``lookback`` before the window), or its whole value when there is no such sample (a new
    series, or one unseen for longer than ``lookback``) or when the counter went down (the
    exporter restarted). Per series, the first that applies:

    * no reset in the window, and it starts at or above the sample before it: last minus that
      sample (a series that existed, was stale, or was not scraped for a while);
    * a reset in the window and the counter ends below its peak (the value before the
      reset): last plus peak, minus the sample before the window if any and not above the
      peak;
    * otherwise its last value (a new series, or one that went down before its first sample
      in the window).

    Exact when at most one reset happened since the sample before the window; with more, or
    when the counter climbed back above its peak within the window, a lower bound.
    """
    series = f'{metric}{{namespace=~"$hub"}}'
    last = f"last_over_time({series}[{window}])"
    before = f"last_over_time({series}[{lookback}] offset {window})"
    peak = f"max_over_time({series}[{window}])"
    low = f"min_over_time({series}[{window}])"
    reset = f"resets({series}[{window}]) > 0"
    went_down = f"({reset}) and ({peak} > {last})"
    return (
        f"(({last} - {before}) unless ({reset}) unless ({low} < {before}))"
        f" or (({last} + {peak} - {before}) and {went_down} and ({peak} >= {before}))"
        f" or (({last} + {peak}) and {went_down})"
        f" or ({last} * 1)"
    )


#: The queries ``report`` and ``unused`` send, as Grafana templates (``$hub``,
#: ``$__range``): the dashboard's "Top packages" and "Direct imports" grouped by hub as
#: well, its "Processes per hub" without the sort, and processes per distribution
#: (``library_used``, for ``unused`` and ``report --by distribution``).
PROMQL = {
    "packages": f"sum by (namespace, package) ({counted(IMPORTED_PACKAGE, '$__range')})",
    "direct": f"sum by (namespace, package) ({counted(DIRECTLY_IMPORTED_PACKAGE, '$__range')})",
    "processes": f"sum by (namespace) ({counted(PROCESSES_REPORTED, '$__range')})",
    "distributions": (f"sum by (namespace, distribution) ({counted(LIBRARY_USED, '$__range')})"),
}


def promql(name: str, span: Window, namespace: str | None) -> str:
    """The dashboard's query ``name`` with its variables substituted as Grafana does."""
    selected = ".*" if namespace is None else re.escape(namespace).replace("\\", "\\\\")
    return PROMQL[name].replace("$hub", selected).replace("$__range", f"{span.seconds}s")
