"""``popcon-commands``: the command-line reference, generated from the argparse parser.

``conf.py`` names where the parser builder may live (``popcon_parser_candidates``, a list of
``module:function``); the first one that imports is handed to sphinx-argparse, which renders
every command, argument, choice and default. The reference therefore cannot drift from the
code: a flag added to the parser appears at the next build.
"""

from __future__ import annotations

import importlib
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ConfigError
from sphinxarg.ext import ArgParseDirective


def parser_builder(candidates: list[str]) -> tuple[str, str]:
    """``(module, function)`` of the first candidate that imports and has the function."""
    problems = []
    for candidate in candidates:
        module_name, _, function = candidate.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            problems.append(f"{candidate}: {exc}")
            continue
        if callable(getattr(module, function, None)):
            return module_name, function
        problems.append(f"{candidate}: no callable {function!r}")
    raise ConfigError("no parser builder found: " + "; ".join(problems))


class CommandsDirective(ArgParseDirective):
    """sphinx-argparse's ``argparse`` directive with the parser taken from ``conf.py``."""

    def run(self) -> Any:
        if "module" not in self.options and "ref" not in self.options:
            module_name, function = parser_builder(self.config.popcon_parser_candidates)
            self.options["module"] = module_name
            self.options["func"] = function
        self.options.setdefault("prog", "popularity-contest")
        return super().run()


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("popcon_parser_candidates", [], "env", list)
    app.add_directive("popcon-commands", CommandsDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
