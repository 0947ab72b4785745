"""Generated (not mutated) text tables through every parser: read as written, or refused.

tests/parsers/test_robustness.py damages the sample exports; here plate grids and
well/value lists are generated from scratch: every plate shape the generic parsers
know and some they do not, with or without row letters, column header and key/value
preamble, comma, semicolon or tab separated (decimal commas with the latter two),
numbers in several spellings and junk in any cell (instrument tokens, NaN, inf,
formulas, numbers in other scripts, "1_0"). ``parse`` (format detection over all
parsers) must return reads in which every number comes from plainly numeric text -
for the generic grid and list formats, exactly the number generated for that well,
and no number where junk was - or raise InputFileError naming the file.
"""

from __future__ import annotations

import math
import re

from hostile_support import JUNK, counted, hostile, pick
from hypothesis import given
from hypothesis import strategies as st

from saa_lab.domain import PlateRead, SourceFile, WellValue
from saa_lab.errors import InputFileError, SaaLabError
from saa_lab.parsers import parse

NAME = "generated-table.csv"
SHAPES = ((2, 3), (3, 4), (4, 6), (6, 8), (8, 12), (8, 12), (8, 12), (5, 7), (1, 12))
ROWS = "ABCDEFGHIJKLMNOP"
TOKENS = ("OVER", "OVRFLW", "?????", "*0.123*", "MISSED", "")  # instruments write these
ODD = ("-", "n/a", "#N/A", "Err:502", "1.2.3", "0x1F", "1e999", "∞", "NaN", "inf", "1_0", "٣",
       "=A1*2", "1,5")  # fmt: skip
PREAMBLE = (("Plate ID", "HOSTILE-1"), ("Wavelength", "710"), ("Read time", "2026-11-20 09:30"),
            ("Barcode", "B-1"), ("Temperature", "25 °C"), ("Note", "x"))  # fmt: skip
_NUMBERS = st.floats(0, 4, allow_nan=False, allow_infinity=False)
_BOOL = st.booleans()
_MODE = st.integers(0, 9)
_PREAMBLE = st.integers(0, 3)
_PLAIN = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def spelled(draw: st.DrawFn, value: float) -> str:
    """A number as an instrument or a spreadsheet writes it."""
    return pick(draw, (f"{value:.4f}", f"{value:.3f}", f"{value:g}", f"{value:.2e}",
                       f" {value:.4f} ", f"+{value:.4f}"))  # fmt: skip


def cell(draw: st.DrawFn, hostile: bool) -> str:
    """A number, an instrument's token or (in a hostile table) junk."""
    mode = draw(_MODE)
    if mode < 8:
        return spelled(draw, draw(_NUMBERS))
    if mode == 8:
        return pick(draw, TOKENS)
    return pick(draw, JUNK) if hostile and draw(_BOOL) else pick(draw, ODD)


def expected(text: str) -> float | None:
    """The number a cell holds: plainly numeric text (decimal comma already turned)."""
    cleaned = text.strip().strip('"').strip()
    if not _PLAIN.fullmatch(cleaned):
        return None
    value = float(cleaned)
    return value if math.isfinite(value) else None


@st.composite
def tables(draw: st.DrawFn) -> tuple[bytes, dict[str, str], bool]:
    """(file bytes, well -> cell text as generated, decimal comma used)."""
    rows, cols = pick(draw, SHAPES)
    delimiter = pick(draw, (",", ";", "\t"))
    comma = delimiter != "," and draw(_BOOL)
    cells: dict[str, str] = {}
    lines = [f"{k}{delimiter}{v}" for k, v in PREAMBLE[: draw(_PREAMBLE)]]
    if lines:
        lines.append("")
    long_format = draw(_MODE) < 3
    hostile = draw(_MODE) < 3  # junk (line breaks, control characters...) in cells
    letters, header = draw(_BOOL) or long_format, draw(_BOOL)
    if long_format:
        lines.append(delimiter.join(("Well", pick(draw, ("Value", "OD", "Abs")))))
    elif header:
        corner = [pick(draw, ("", "<>", "Well"))] if letters else []
        lines.append(delimiter.join(corner + [str(c) for c in range(1, cols + 1)]))
    for r in range(rows):
        row = []
        for c in range(1, cols + 1):
            text = cell(draw, hostile)
            text = text.replace(".", ",") if comma else text
            if any(s in text for s in (delimiter, '"', "\n", "\r")):
                text = '"' + text.replace('"', '""') + '"'
            well = f"{ROWS[r]}{c}"
            cells[well] = text
            if long_format:
                lines.append(f"{ROWS[r]}{c:02d}{delimiter}{text}")
            else:
                row.append(text)
        if not long_format:
            lines.append(delimiter.join(([ROWS[r]] if letters else []) + row))
    ending = pick(draw, ("\n", "\r\n", "\r"))
    text = ending.join(lines) + ending
    encoding = pick(draw, ("utf-8", "utf-8", "utf-8-sig", "cp1252", "utf-16"))
    return text.encode(encoding, errors="replace"), cells, comma


def _number_of(value: WellValue, where: str) -> None:
    if value.value is None:
        assert value.reason, f"{where}: no value and no reason"
        return
    number = expected(value.raw.replace(",", "."))
    assert number is not None, f"{where}: {value.value} from non-numeric text {value.raw!r}"
    assert math.isclose(number, value.value, rel_tol=1e-9, abs_tol=1e-12), where


def check(reads: list[PlateRead], cells: dict[str, str], comma: bool) -> None:
    for read in reads:
        for well, value in read.wells.items():
            where = f"{read.format} {read.label} {well}"
            _number_of(value, where)
            if read.format not in ("generic_grid", "generic_long") or set(read.wells) != set(cells):
                continue
            raw = cells[well].strip('"').replace('""', '"')
            wanted = expected(raw.replace(",", ".") if comma else raw)
            if wanted is None:
                assert value.value is None, f"{where}: {value.value} read from {raw!r}"
            else:
                assert value.value is not None, f"{where}: {raw!r} not read"
                assert math.isclose(value.value, wanted, rel_tol=1e-9), where


@hostile(900)
@given(tables())
@counted
def test_generated_tables_are_read_as_written_or_refused(
    table: tuple[bytes, dict[str, str], bool],
) -> None:
    data, cells, comma = table
    try:
        reads = parse(SourceFile(data, NAME))
    except SaaLabError as error:
        assert isinstance(error, InputFileError), f"{type(error).__name__}: {error}"
        assert error.path == NAME, f"the error does not name the file: {error}"
        assert "\n" not in str(error), str(error)
        return
    check(reads, cells, comma)
