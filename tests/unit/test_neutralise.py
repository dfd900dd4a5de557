"""Strings that came off the wire are data in every output: CSV cells, terminals, the API."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from popularity_contest.answers.formats import csv_cell, table, terminal_text, to_csv
from popularity_contest.collector.exposition import Health, PopconCollector, registry_for
from popularity_contest.collector.store import (
    IMPORTED_PACKAGE,
    PROCESSES_REPORTED,
    Store,
    series_key,
)
from popularity_contest.collector.web.api import Api
from tests.envkit import REPO, clean_env

FORMULAS = ['=HYPERLINK("http://x")', "+1+1", "-2+cmd|' /C calc'!A0", "@SUM(A1)", "\tx", "\rx"]
ESCAPES = "numpy\x1b]0;owned\x07\x1b[2J\r\u202egnp.exe"


@pytest.mark.parametrize("text", FORMULAS)
def test_formula_cells_are_quoted(text: str) -> None:
    assert csv_cell(text) == "'" + text
    parsed = next(csv.reader(io.StringIO(to_csv([{"package": text}], ["package"]))))
    assert parsed == ["package"]


@pytest.mark.parametrize("value", ["numpy", "-3", "+4.5", "12", 7, -3, 2.5, None, ""])
def test_ordinary_cells_and_numbers_are_unchanged(value: object) -> None:
    assert csv_cell(value) == value


def test_terminal_text_shows_control_characters_instead_of_obeying_them() -> None:
    shown = terminal_text(ESCAPES)
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or c == "\u202e" for c in shown)
    assert shown == "numpy\\x1b]0;owned\\x07\\x1b[2J\\r\\u202egnp.exe"
    text = table(["package"], [[ESCAPES]], set())
    assert "\x1b" not in text
    assert "\\x1b" in text


@pytest.fixture
def hostile_store(tmp_path: Path) -> Path:
    db = tmp_path / "hostile.sqlite3"
    now = time.time() - 60
    with Store.open(db) as store:
        store.add(
            {
                series_key(IMPORTED_PACKAGE, {"namespace": "", "package": FORMULAS[0]}): 3,
                series_key(IMPORTED_PACKAGE, {"namespace": "h\x1b[31m", "package": ESCAPES}): 2,
                series_key(PROCESSES_REPORTED, {"namespace": ""}): 3,
                series_key(PROCESSES_REPORTED, {"namespace": "h\x1b[31m"}): 2,
            },
            at=now,
        )
    return db


def test_the_api_csv_neutralises_formulas(hostile_store: Path) -> None:
    with Store.open(hostile_store) as store:
        api = Api(store, registry_for(PopconCollector(dict, Health), CollectorRegistry()))
        for path in ("/api/v1/packages?format=csv", "/api/v1/popularity?format=csv"):
            rows = list(csv.DictReader(io.StringIO(api.handle(path).body.decode(), newline="")))
            packages = {row["package"] for row in rows}
            assert "'" + FORMULAS[0] in packages, path
            assert FORMULAS[0] not in packages
        document = json.loads(api.handle("/api/v1/packages").body)  # JSON keeps the data exact
        assert FORMULAS[0] in {row["package"] for row in document["totals"]}


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_report_output_is_safe_for_spreadsheets_and_terminals(
    hostile_store: Path, fmt: str
) -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "popularity_contest", "report", "--db", str(hostile_store)),
            *("--format", fmt, "--by", "hub"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=clean_env(),
        timeout=60,
        check=True,
    )
    if fmt == "csv":  # data for machines: exact, except what a spreadsheet would run
        cells = [cell for row in csv.reader(io.StringIO(done.stdout, newline="")) for cell in row]
        assert "'" + FORMULAS[0] in cells
        assert not any(cell.startswith(("=", "@", "+")) for cell in cells)
    else:  # for people at a terminal: control characters shown, never obeyed
        assert "\x1b" not in done.stdout
        assert "\r" not in done.stdout
        assert "\\x1b" in done.stdout
