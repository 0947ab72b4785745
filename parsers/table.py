"""Exports as rows of text cells, whether they come as text or as a workbook.

Vendor parsers work on :class:`Row` values: a line of a text export split at
its delimiter, or a spreadsheet row with every cell rendered as text. The
rendering keeps numbers exact (``repr`` of the float), dates and times as ISO
8601 text, durations as ``[-]H:MM:SS[.ffffff]`` and empty cells as ``""``.

For detection, :func:`head_text` turns the start of any export into text: a
text file is decoded; a workbook becomes its first rows per sheet, cells
joined by tabs, each sheet introduced by a line ``##SHEET<TAB><name>``.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from xml.etree import ElementTree

from saa_lab.domain import SourceFile
from saa_lab.errors import ConfigError, InputFileError

from .base import decode
from .xlsx_guard import check_xls, check_xlsx

__all__ = [
    "SHEET_MARKER",
    "Row",
    "Sheet",
    "decide_decimal_comma",
    "guess_delimiter",
    "head_text",
    "is_ole",
    "is_workbook",
    "is_zip",
    "read_workbook",
    "split_text",
]

SHEET_MARKER = "##SHEET"
_LINE_BREAK = re.compile(r"\r\n|\n|\r")
_COMMA_DECIMAL = re.compile(r"^[+-]?\d+,\d+([eE][+-]?\d+)?$")
_POINT_DECIMAL = re.compile(r"^[+-]?\d*\.\d+([eE][+-]?\d+)?$")
_ZIP = b"PK\x03\x04"
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@dataclass(frozen=True)
class Row:
    """One line or spreadsheet row; ``number`` counts from 1 as editors and Excel do."""

    number: int
    cells: tuple[str, ...]

    @property
    def first(self) -> str:
        return self.cells[0].strip() if self.cells else ""

    @property
    def filled(self) -> tuple[str, ...]:
        """The stripped cells without the empty ones at the end."""
        cells = [cell.strip() for cell in self.cells]
        while cells and not cells[-1]:
            cells.pop()
        return tuple(cells)

    @property
    def is_blank(self) -> bool:
        return not self.filled

    def cell(self, index: int) -> str:
        return self.cells[index].strip() if index < len(self.cells) else ""


@dataclass(frozen=True)
class Sheet:
    name: str
    rows: tuple[Row, ...]


def is_zip(data: bytes) -> bool:
    return data.startswith(_ZIP)


def is_ole(data: bytes) -> bool:
    return data.startswith(_OLE)


def is_workbook(data: bytes) -> bool:
    """An xlsx (a zip, whatever the file is called, e.g. ``.xls``) or a legacy .xls."""
    return is_zip(data) or is_ole(data)


def split_text(text: str, delimiter: str) -> list[Row]:
    """Lines (CR, LF, CRLF, mixed) split at the delimiter; quotes honoured for , and ;."""
    rows = []
    for number, line in enumerate(_LINE_BREAK.split(text), start=1):
        if delimiter in ",;":
            cells = next(csv.reader([line], delimiter=delimiter), [])
        else:
            cells = line.split(delimiter)
        rows.append(Row(number, tuple(cells)))
    if rows and rows[-1].is_blank and rows[-1].cells in ((), ("",)):
        rows.pop()
    return rows


def guess_delimiter(text: str, *, candidates: str = "\t;,", lines: int = 80) -> str:
    """The candidate that splits the most of the first non-blank lines into most cells."""
    sample = [line for line in _LINE_BREAK.split(text)[:lines] if line.strip()]
    best, best_score = candidates[0], -1
    for delimiter in candidates:
        score = sum(line.count(delimiter) for line in sample)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def decide_decimal_comma(cells: Iterable[str], delimiter: str) -> bool:
    """Whether this file writes decimals with a comma, decided from its data.

    Never in a comma-delimited file. Otherwise: comma decimals (``0,123``) seen
    and no point decimals (``0.123``).
    """
    if delimiter == ",":
        return False
    comma = point = 0
    for cell in cells:
        text = cell.strip()
        if _COMMA_DECIMAL.match(text):
            comma += 1
        elif _POINT_DECIMAL.match(text):
            point += 1
    return comma > 0 and point == 0


def _render(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        sign = "-" if seconds < 0 else ""
        whole, fraction = divmod(abs(seconds), 1)
        hours, rest = divmod(int(whole), 3600)
        minutes, secs = divmod(rest, 60)
        text = f"{sign}{hours}:{minutes:02d}:{secs:02d}"
        return text + (f"{fraction:.6f}"[1:] if fraction else "")
    return str(value)


def read_workbook(source: SourceFile, *, max_rows: int | None = None) -> list[Sheet]:
    """Every sheet of an xlsx (also when named .xls) or a legacy .xls, as text rows."""
    data = source.contents
    if is_zip(data):
        return _read_xlsx(source, max_rows)
    if is_ole(data):
        return _read_xls(source, max_rows)
    msg = "not an Excel workbook"
    raise InputFileError(msg, path=source.original_path)


# What openpyxl and xlrd raise on damaged workbooks (they read lazily, so these can
# come while rows are iterated, not only on open). They are the library's verdict
# on untrusted input, turned into our InputFileError at this one boundary.
_XLSX_DAMAGE: tuple[type[BaseException], ...] = (
    EOFError,
    IndexError,
    KeyError,
    NotImplementedError,
    OSError,
    TypeError,
    ValueError,
    zlib.error,
    zipfile.BadZipFile,
    ElementTree.ParseError,
)


def _one_line(exc: BaseException) -> str:
    """A library's message for our one-line errors (openpyxl's span several lines)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _unsafe_xml(exc: BaseException, path: str) -> InputFileError | None:
    """defusedxml's refusal of a DTD entity (XXE, "billion laughs") as our one line.

    openpyxl wraps what the parser raised while opening ("Unable to read workbook"),
    so the refusal is looked for along the chain of causes.
    """
    from defusedxml import DefusedXmlException

    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, DefusedXmlException):
        seen = seen.__cause__ or seen.__context__
    if seen is None:
        return None
    exc = seen
    msg = (
        f"refused: the workbook's XML declares an entity ({exc}), which could read local "
        "files or expand without end; no instrument writes that: export the file again "
        "from the instrument software"
    )
    return InputFileError(" ".join(msg.split()), path=path)


def _read_xlsx(source: SourceFile, max_rows: int | None) -> list[Sheet]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException
    from openpyxl.xml import DEFUSEDXML

    if not DEFUSEDXML:
        # openpyxl parses XML with the standard library unless defusedxml is importable
        # (and OPENPYXL_DEFUSEDXML is not set to anything but "True"): not the file's fault.
        msg = (
            "openpyxl is not using defusedxml (not installed, or OPENPYXL_DEFUSEDXML is set); "
            "workbooks are not read without it: install saa-lab's dependencies"
        )
        raise ConfigError(msg)
    check_xlsx(source.contents, source.original_path)
    try:
        # keep_links=False: links to other workbooks (xl/externalLinks) are not even read;
        # data_only=True: a formula gives the value cached in the file, or None.
        book = load_workbook(
            io.BytesIO(source.contents), read_only=True, data_only=True, keep_links=False
        )
    except (*_XLSX_DAMAGE, InvalidFileException) as exc:
        refused = _unsafe_xml(exc, source.original_path)
        if refused is not None:
            raise refused from exc
        msg = f"cannot open the workbook (damaged or not an xlsx): {_one_line(exc)}"
        raise InputFileError(msg, path=source.original_path) from exc
    sheets = []
    try:
        for ws in book.worksheets:
            rows = []
            try:
                for number, values in enumerate(ws.iter_rows(values_only=True), start=1):
                    if max_rows is not None and number > max_rows:
                        break
                    rows.append(Row(number, tuple(_render(v) for v in values)))
            except _XLSX_DAMAGE as exc:
                refused = _unsafe_xml(exc, source.original_path)
                if refused is not None:
                    raise refused from exc
                msg = f"sheet {ws.title!r} is damaged after row {len(rows)}: {_one_line(exc)}"
                raise InputFileError(msg, path=source.original_path) from exc
            while rows and rows[-1].is_blank:
                rows.pop()
            sheets.append(Sheet(ws.title, tuple(rows)))
    finally:
        book.close()
    return sheets


def _read_xls(source: SourceFile, max_rows: int | None) -> list[Sheet]:
    import struct

    import xlrd
    from xlrd.compdoc import CompDocError

    damage = (*_XLSX_DAMAGE, xlrd.XLRDError, CompDocError, AssertionError, struct.error)
    check_xls(source.contents, source.original_path)
    try:
        book = xlrd.open_workbook(file_contents=source.contents, logfile=io.StringIO())
        sheets = []
        for ws in book.sheets():
            rows = []
            limit = ws.nrows if max_rows is None else min(ws.nrows, max_rows)
            for r in range(limit):
                cells = []
                for cell in ws.row(r):
                    value: object = cell.value
                    if cell.ctype == xlrd.XL_CELL_DATE:
                        value = xlrd.xldate.xldate_as_datetime(cell.value, book.datemode)
                    elif cell.ctype == xlrd.XL_CELL_EMPTY:
                        value = None
                    cells.append(_render(value))
                rows.append(Row(r + 1, tuple(cells)))
            while rows and rows[-1].is_blank:
                rows.pop()
            sheets.append(Sheet(ws.name, tuple(rows)))
    except damage as exc:
        msg = f"cannot read the legacy .xls workbook (damaged?): {_one_line(exc)}"
        raise InputFileError(msg, path=source.original_path) from exc
    return sheets


def head_text(source: SourceFile, *, head_bytes: int = 16384, rows: int = 60) -> str:
    """The start of any export as text, for ``sniff`` (see the module docstring)."""
    if is_workbook(source.contents):
        parts = []
        for sheet in read_workbook(source, max_rows=rows):
            parts.append(f"{SHEET_MARKER}\t{sheet.name}")
            parts.extend("\t".join(row.cells) for row in sheet.rows)
        return "\n".join(parts)
    head = SourceFile(source.contents[:head_bytes], source.original_path, "-")
    text, _ = decode(head)
    return text


def cells_of(rows: Sequence[Row]) -> Iterable[str]:
    for row in rows:
        yield from row.cells
