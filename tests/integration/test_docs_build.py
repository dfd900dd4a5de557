"""The documentation site builds offline with warnings as errors, as `make docs` does."""

from __future__ import annotations

import html
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import require
from tests.envkit import REPO, clean_env


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in modules)


def test_the_docs_build_without_warnings_and_without_the_network(tmp_path: Path) -> None:
    require(
        _installed("sphinx", "myst_parser", "pydata_sphinx_theme", "sphinxarg"),
        "Sphinx and its extensions are not installed: pip install -e '.[docs]'",
    )
    out = tmp_path / "html"
    sphinx = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html"]
    result = subprocess.run(
        [*sphinx, "docs", str(out)],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]

    # The command-line reference is generated from the parser: every command and flag.
    cli = html.unescape(re.sub(r"<[^>]+>", "", (out / "reference" / "cli.html").read_text()))
    for command in ("install", "uninstall", "check", "serve", "report", "unused", "demo"):
        assert f"popularity-contest {command}" in cli, command
    for flag in ("--expect-collector", "--min-processes", "--environment", "--prometheus"):
        assert flag in cli, flag

    # Every section's glob picked up its pages.
    for section, page in (
        ("guides", "one-machine"),
        ("concepts", "privacy"),
        ("reference", "metrics"),
    ):
        assert f'href="{page}.html"' in (out / section / "index.html").read_text(), page
    assert (out / "operations" / "troubleshooting.html").is_file()

    # Nothing is loaded from elsewhere: no remote scripts, styles or fonts.
    remote = re.compile(r"<(?:script|link|img)[^>]+(?:src|href)=\"(?:https?:)?//", re.I)
    offenders = [
        str(page.relative_to(out))
        for page in out.rglob("*.html")
        if remote.search(page.read_text())
    ]
    assert not offenders, offenders
