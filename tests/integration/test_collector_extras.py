"""`serve` with the `collector` extra alone (no JupyterHub): what a one-machine install has."""

from __future__ import annotations

from pathlib import Path

from tests.collectorkit import Collector


def test_serve_runs_without_jupyterhub_installed(tmp_path: Path) -> None:
    # A `jupyterhub` package that cannot be imported, first on the path: as if absent.
    hidden = tmp_path / "hidden"
    (hidden / "jupyterhub").mkdir(parents=True)
    (hidden / "jupyterhub" / "__init__.py").write_text("raise ImportError('not installed')\n")
    with Collector(tmp_path / "popcon.sqlite3", env={"PYTHONPATH": str(hidden)}) as collector:
        collector.send(b"python_popcon.imported_package.numpy:1|c")
        collector.wait_until(
            lambda: "numpy" in collector.read("/metrics"), what="the count on /metrics"
        )
        status, body = collector.get("/healthz")
        assert status == 200, body
        status, page = collector.get("/")
        assert status == 200
        assert "numpy" in page or "<html" in page.lower()
