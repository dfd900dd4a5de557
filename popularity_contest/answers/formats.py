"""Output formats every command shares: aligned text tables, CSV, JSON numbers.

``--format table`` is for people, ``json`` and ``csv`` for machines; every command takes the
same flag.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence

#: What a spreadsheet reads as the start of a formula (OWASP's list for CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[-+]?[0-9]+(\.[0-9]+)?")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def csv_cell(value: object) -> object:
    """A CSV cell that no spreadsheet runs as a formula: text starting with ``= + - @``, a
    tab or a carriage return gets a leading ``'`` (numbers, and text that is just a number
    such as ``-3``, pass unchanged). Every string that came off the wire goes through this
    before a CSV writer."""
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_PREFIXES)
        and not _NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


def terminal_text(text: str) -> str:
    """``text`` safe to print on a terminal: control characters (escape sequences, carriage
    returns, bidirectional overrides) become visible ``\\xNN``/``\\uNNNN`` escapes."""
    return _CONTROL.sub(lambda found: ascii(found.group())[1:-1], text)


def number(value: float) -> int | float:
    """Whole counts as integers (sample rates can make fractions), others to 3 places."""
    return int(value) if float(value).is_integer() else round(value, 3)


def share_text(share: float | None) -> str:
    """``12.5%``, or ``-`` when there is no denominator."""
    return "-" if share is None else f"{share * 100:.1f}%"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    """An aligned text table (columns in ``right`` are right-aligned); cells are made
    terminal-safe (``terminal_text``)."""
    headers = [terminal_text(h) for h in headers]
    rows = [[terminal_text(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def to_csv(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else csv_cell(row.get(k)) for k in columns})
    return buffer.getvalue()


def columns(rows: Sequence[Sequence[str]]) -> str:
    """Rows as left-aligned columns two spaces apart, no header rule, last column unpadded;
    cells are made terminal-safe (``terminal_text``)."""
    rows = [[terminal_text(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)
