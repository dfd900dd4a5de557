"""The documentation names what the code has: variables, metrics, and install commands.

Grep-based on purpose: these checks read the package's source files, not its modules, so
they hold however the package is laid out.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.envkit import REPO

PACKAGE = REPO / "popularity_contest"
DOCS = REPO / "docs"
ENVIRONMENT_PAGE = DOCS / "reference" / "environment.md"
METRICS_PAGE = DOCS / "reference" / "metrics.md"

#: A whole variable name; not `PYTHON_POPCONTEST_SERVE_*` in a comment.
VARIABLE = re.compile(r"\bPYTHON_POPCONTEST_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_*])")
#: A name bound to the bare prefix, from which the code builds variable names.
PREFIX_BINDING = re.compile(r"^\s*(\w+)\s*(?::[^=]+)?=\s*[\"']PYTHON_POPCONTEST_[\"']", re.M)
METRIC = re.compile(r"\bpython_popcon_[a-z0-9_]*[a-z0-9](?![a-z0-9_*])")


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def variables_in_source() -> set[str]:
    """Every ``PYTHON_POPCONTEST_*`` name in the package, written out or built from a prefix.

    Recognises ``"PYTHON_POPCONTEST_X"``, and ``P + "X"`` / ``f"{P}X"`` where ``P`` is any
    name bound to ``"PYTHON_POPCONTEST_"`` (also as ``module.P``).
    """
    texts = [path.read_text() for path in _sources()]
    found = {match for text in texts for match in VARIABLE.findall(text)}
    prefixes = {name for text in texts for name in PREFIX_BINDING.findall(text)}
    for prefix in prefixes:
        built = re.compile(
            rf"(?:\b{prefix}\s*\+\s*[\"']([A-Z0-9_]+)[\"']|\{{(?:\w+\.)?{prefix}\}}([A-Z0-9_]+))"
        )
        for text in texts:
            for plus, fstring in built.findall(text):
                found.add("PYTHON_POPCONTEST_" + (plus or fstring))
    return found


def test_the_variable_scan_sees_the_variables_it_should() -> None:
    # If the source changes shape so that the scan finds nothing, this fails instead of
    # the next test passing vacuously.
    found = variables_in_source()
    assert {
        "PYTHON_POPCONTEST_STATSD_HOST",
        "PYTHON_POPCONTEST_DISABLE",
        "PYTHON_POPCONTEST_SERVE_DB",
        "PYTHON_POPCONTEST_SERVE_MIN_PROCESSES",
    } <= found


def test_every_variable_in_the_source_is_in_the_environment_reference() -> None:
    page = ENVIRONMENT_PAGE.read_text()
    missing = sorted(name for name in variables_in_source() if f"`{name}`" not in page)
    assert not missing, f"add these to {ENVIRONMENT_PAGE.relative_to(REPO)}: {missing}"


def test_every_variable_in_the_environment_reference_exists_in_the_source() -> None:
    documented = set(VARIABLE.findall(ENVIRONMENT_PAGE.read_text()))
    unknown = sorted(documented - variables_in_source())
    assert not unknown, f"documented but read nowhere in the package: {unknown}"


def metrics_in_source() -> set[str]:
    """``python_popcon_*`` names in the package (code and shipped YAML) and deploy's rules."""
    paths = [
        *_sources(),
        *PACKAGE.rglob("*.yaml"),
        REPO / "deploy" / "statsd-mapping.yaml",
        *(REPO / "deploy" / "helm").glob("*.yaml"),
    ]
    return {name for path in paths for name in METRIC.findall(path.read_text())}


def test_every_metric_is_in_the_metrics_reference() -> None:
    names = metrics_in_source()
    assert {"python_popcon_imported_package_total", "python_popcon_check_total"} <= names
    page = METRICS_PAGE.read_text()
    missing = sorted(name for name in names if f"`{name}`" not in page)
    assert not missing, f"add these to {METRICS_PAGE.relative_to(REPO)}: {missing}"


def test_every_health_metric_of_the_collector_is_in_the_metrics_reference() -> None:
    pytest.importorskip("prometheus_client", reason="the collector extra is not installed")
    from popularity_contest.collector.exposition import Health, PopconCollector
    from popularity_contest.collector.ingest import IngestStats
    from popularity_contest.collector.outcomes import Bad

    health = Health(IngestStats(refused={Bad.MALFORMED_LINE: 1}), kernel_drops=0)
    collector = PopconCollector(lambda: {}, lambda: health)
    names = {sample.name for family in collector.collect() for sample in family.samples}
    assert "popcon_collector_lines_received_total" in names
    page = METRICS_PAGE.read_text()
    missing = sorted(name for name in names if f"`{name}`" not in page)
    assert not missing, f"add these to {METRICS_PAGE.relative_to(REPO)}: {missing}"


# --- Install commands -------------------------------------------------------------------

#: Forms that get this project rather than the index's 0.4.1: a version 0.4.1 cannot
#: satisfy, a wheel from `make dist`, a path or file URL.
GETS_THIS_PROJECT = re.compile(r">=\s*0\.5|dist/|file:|\s\./|\s/\S+\.whl|\s-e\s|\s\.\s*$")
NAMES_PROJECT = re.compile(r"popularity[-_]contest")
FENCE = re.compile(r"^(```|~~~)")


def documented_files() -> list[Path]:
    return [REPO / "README.md", REPO / "deploy" / "README.md", *sorted(DOCS.rglob("*.md"))]


def install_commands(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """``pip install`` commands naming the project: (in code blocks, (inline, paragraph))."""
    blocks: list[str] = []
    inline: list[tuple[str, str]] = []
    in_fence = False
    paragraph: list[str] = []
    command: list[str] = []

    def end_paragraph() -> None:
        text = " ".join(paragraph)
        spans = re.findall(r"`([^`]*pip install[^`]*)`", text)
        inline.extend((span, text) for span in spans if NAMES_PROJECT.search(span))
        paragraph.clear()

    for line in text.splitlines():
        if FENCE.match(line.strip()):
            in_fence = not in_fence
            end_paragraph()
            continue
        if in_fence:
            command.append(line.rstrip("\\").strip())
            if line.rstrip().endswith("\\"):
                continue
            joined = " ".join(command)
            command.clear()
            if "pip install" in joined and NAMES_PROJECT.search(joined.split("pip install")[1]):
                blocks.append(joined)
        elif line.strip():
            paragraph.append(line.strip())
        else:
            end_paragraph()
    end_paragraph()
    return blocks, inline


def test_install_commands_get_this_project_not_the_index_release() -> None:
    seen = 0
    wrong: list[str] = []
    for path in documented_files():
        blocks, inline = install_commands(path.read_text())
        for command in blocks:
            seen += 1
            # A shell prompt (`$ `, `# ` for root) is not a comment; what follows `#` after the
            # command is.
            command_text = re.sub(r"^[$#]\s+", "", command).split(" #")[0]
            if not GETS_THIS_PROJECT.search(command_text):
                wrong.append(f"{path.relative_to(REPO)}: {command}")
        for span, paragraph in inline:
            seen += 1
            # The sentence that warns about the index's release may quote the plain command.
            if not GETS_THIS_PROJECT.search(span) and "0.4.1" not in paragraph:
                wrong.append(f"{path.relative_to(REPO)}: `{span}`")
    assert seen > 5
    assert not wrong, "these install the index's 0.4.1:\n" + "\n".join(wrong)


def test_the_install_check_catches_the_plain_command() -> None:
    blocks, _ = install_commands("```console\npip install 'popularity-contest[collector]'\n```\n")
    assert blocks == ["pip install 'popularity-contest[collector]'"]
    assert not GETS_THIS_PROJECT.search(blocks[0])


def test_the_readme_says_why_in_one_sentence() -> None:
    readme = (REPO / "README.md").read_text()
    assert "`make dist`" in readme
    assert re.search(r"`pip install popularity-contest`[^.]*0\.4\.1", readme)
