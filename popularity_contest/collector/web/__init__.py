"""The collector's HTTP side: ``/metrics``, the JSON/CSV API, the page, the hub login."""
