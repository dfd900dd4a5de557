"""The embedded collector behind ``popularity-contest serve``.

statsd over UDP in (``server``), statsd_exporter's mapping rules (``mapping``), a SQLite store
of time-bucketed counts (``store``), and HTTP out: ``/metrics`` (``exposition``) and a small
JSON/CSV API (``api``). Needs the ``collector`` extra (prometheus-client, PyYAML).
"""
