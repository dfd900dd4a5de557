"""Answers shared by ``report``, ``unused`` and the collector's page.

``window`` (time ranges), ``sources`` (the store or Prometheus), ``promql`` (the counting
expression the dashboard uses too), ``ranking`` (top packages, privacy threshold),
``unused`` (verdicts on installed distributions), ``formats`` (tables, CSV, JSON).
"""
