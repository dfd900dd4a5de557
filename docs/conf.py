"""Sphinx configuration for the popularity-contest documentation.

Built by ``make docs`` (warnings are errors) and by Read the Docs (``.readthedocs.yaml``).
The build needs no network: no intersphinx inventories, no link checks, no remote assets.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# The package from this checkout (also when it is not installed), and the local extension.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))

from popularity_contest import __version__  # noqa: E402

project = "popularity-contest"
author = "popularity-contest developers"
copyright = "popularity-contest developers"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinxarg.ext",
    "popcon_cli",
]

# The command-line reference is generated from the argparse parser. This is the ONE place
# that names where the parser builder lives: the first importable candidate is used.
popcon_parser_candidates = [
    "popularity_contest.commands.main:build_parser",
    "popularity_contest.cli:build_parser",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

myst_enable_extensions = ["colon_fence", "deflist"]
# Headings get anchors, so pages can link to `page.md#a-heading`.
myst_heading_anchors = 3

nitpicky = True
# Offline by design: nothing is fetched while building.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

html_theme = "pydata_sphinx_theme"
html_title = f"popularity-contest {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "footer_start": ["copyright"],
    "footer_end": [],
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"index": []}
html_show_sourcelink = False
