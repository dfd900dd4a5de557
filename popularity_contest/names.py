"""The names both sides of the wire agree on: statsd names sent, Prometheus names exposed.

The reporter writes ``<prefix>.<package>:1|c`` with ``DEFAULT_PREFIX`` unless configured;
the counters that are not per package sit *beside* the prefix's last component (``LEAF_*``,
see :func:`popularity_contest.inprocess.lines.sibling`). ``deploy/statsd-mapping.yaml``
turns them into the Prometheus metrics below, labelled ``namespace`` (the hub; ``""`` when
the prefix names none) and ``package`` or ``distribution``. The embedded collector, the
answers, the Grafana dashboard generator and the tests all import these names from here.

Runs inside users' processes too (the reporter reads the statsd names): no imports.
"""

#: The reporter's default statsd prefix (``PYTHON_POPCONTEST_STATSD_PREFIX``).
DEFAULT_PREFIX = "python_popcon.imported_package"

#: statsd leaves beside the prefix's last component.
LEAF_PROCESSES_REPORTED = "processes_reported"
LEAF_USER_IMPORTED_PACKAGE = "user_imported_package"
LEAF_LIBRARY_USED = "library_used"
LEAF_CHECK = "check"
#: Packages the process's own code imported (not only a library): see issue 15's rule.
LEAF_DIRECTLY_IMPORTED_PACKAGE = "directly_imported_package"
LEAF_DIRECTLY_IMPORTED_USER_PACKAGE = "directly_imported_user_package"

#: Prometheus metrics, as mapped by ``deploy/statsd-mapping.yaml`` (counters, ``_total``).
IMPORTED_PACKAGE = "python_popcon_imported_package_total"
USER_IMPORTED_PACKAGE = "python_popcon_user_imported_package_total"
PROCESSES_REPORTED = "python_popcon_processes_reported_total"
LIBRARY_USED = "python_popcon_library_used_total"
CHECK = "python_popcon_check_total"
DIRECTLY_IMPORTED_PACKAGE = "python_popcon_directly_imported_package_total"
DIRECTLY_IMPORTED_USER_PACKAGE = "python_popcon_directly_imported_user_package_total"

#: The label that names the hub (z2jh's Kubernetes namespace); ``""`` for no hub.
HUB_LABEL = "namespace"
#: The label ``popularity-contest archive`` gives each source's series (its name).
CLUSTER_LABEL = "cluster"

#: The embedded collector's own health metrics start with this.
COLLECTOR_PREFIX = "popcon_collector_"
#: statsd lines the embedded collector received (``check`` reads it as evidence).
LINES_RECEIVED = COLLECTOR_PREFIX + "lines_received_total"
