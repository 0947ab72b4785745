"""Generic plate grid (comma, semicolon or tab) → one PlateRead.

A plate written as a plain grid: rows A, B, … of values (2×3, 3×4, 4×6, 6×8,
8×12 or 16×24), with or without row letters and a column header (1…N,
optionally after an empty, ``<>`` or ``Well`` corner cell). ``Key,Value`` lines
around the grid name the plate (``Plate ID``/``Barcode``), the ``Wavelength``,
the ``Label`` and the read time; other keys are kept as metadata.
"""

from __future__ import annotations

import re
from datetime import datetime

from saa_lab.domain import Meta, PlateRead, SourceFile, WellValue
from saa_lab.errors import InputFileError

from ..base import Instrument, PlateParser, decode, parse_cell
from ..common import (
    decimal_commas,
    key_value,
    metadata_key,
    metadata_wavelength,
    note_wavelength,
    plate_read,
)
from ..dates import find_timestamp
from ..table import SHEET_MARKER
from . import constants as c
from .reader import CsvLine, GridBlock, check_grid, read_blocks, split_lines

__all__ = ["GenericGridParser", "has_vendor_marker"]

_COMMA_NUMBER = re.compile(r"\d,\d")


def has_vendor_marker(head: str) -> bool:
    """True when the head shows a vendor format (those parsers own such files)."""
    return head.startswith(SHEET_MARKER) or any(marker in head for marker in c.VENDOR_MARKERS)


class GenericGridParser(PlateParser):
    """One plate as a comma-, semicolon- or tab-separated grid."""

    INSTRUMENT = Instrument.GENERIC_GRID
    DISPLAY_NAME = c.DISPLAY_NAME
    SUPPORTED_EXTENSIONS = (".csv", ".txt", ".tsv")

    @classmethod
    def sniff(cls, head: str) -> bool:
        if has_vendor_marker(head):
            return False
        for delimiter in c.DELIMITERS:
            decimal_comma = delimiter in c.DECIMAL_COMMA_DELIMITERS
            lines = split_lines(head, delimiter)
            blocks, _ = read_blocks(lines, delimiter, decimal_comma=decimal_comma)
            if any(block.has_values and block.is_plate() for block in blocks):
                return True
        return False

    def read_file(self, source: SourceFile) -> list[PlateRead]:
        text, encoding = decode(source)
        return [_parse_text(text, source, encoding)]


def _choose_delimiter(text: str) -> tuple[str, list[GridBlock], list[CsvLine]]:
    """The delimiter under which the file shows the largest grid of values."""
    best: tuple[int, str, list[GridBlock], list[CsvLine]] | None = None
    for delimiter in c.DELIMITERS:
        decimal_comma = delimiter in c.DECIMAL_COMMA_DELIMITERS
        lines = split_lines(text, delimiter)
        blocks, others = read_blocks(lines, delimiter, decimal_comma=decimal_comma)
        score = max((len(b.rows) * b.columns() for b in blocks if b.has_values), default=0)
        if score and (best is None or score > best[0]):
            best = (score, delimiter, blocks, others)
    if best is None:
        raise InputFileError(c.NO_GRID)
    return best[1], best[2], best[3]


def _parse_text(text: str, source: SourceFile, encoding: str) -> PlateRead:
    delimiter, blocks, others = _choose_delimiter(text)
    grid, columns = check_grid(blocks)
    decimal_comma = delimiter in c.DECIMAL_COMMA_DELIMITERS
    if decimal_comma:
        _check_decimal_mark(grid, columns)
    wells: dict[str, WellValue] = {}
    for index, row in enumerate(grid.rows):
        letter = row.letter or c.ROW_LETTERS[index]
        for column, raw in enumerate(row.values(columns), start=1):
            wells[f"{letter}{column}"] = parse_cell(raw, decimal_comma=decimal_comma)

    metadata: dict[str, str] = {c.META_DELIMITER: delimiter, c.META_ENCODING: encoding}
    skipped = [b.first_line for b in blocks if not b.has_values and b.rows]
    if skipped:
        metadata[c.META_SKIPPED_GRID] = ", ".join(str(line) for line in skipped)
    plate_id: str | None = None
    label: str | None = None
    wavelength: float | None = None
    stamp: datetime | None = None
    for line in others:
        pair = key_value([cell for cell in line.cells if cell])
        if pair is None:
            continue
        key, value = pair
        normal = metadata_key(key)
        if normal in c.PLATE_ID_KEYS:
            plate_id = plate_id or value
        elif normal in c.WAVELENGTH_KEYS:
            wavelength = wavelength or metadata_wavelength(value, line.number, c.BAD_WAVELENGTH)
        elif normal in c.LABEL_KEYS:
            label = label or value
        if normal in c.DATE_KEYS:
            stamp = stamp or find_timestamp(value)
        metadata.setdefault(key, value)
    if stamp is None:
        stamp = next(
            (s for line in others for s in [_year_first_stamp(line)] if s is not None), None
        )
    read_time = stamp.replace(tzinfo=source.timezone) if stamp is not None else None
    if read_time is not None:
        metadata[Meta.READ_TIME] = read_time.isoformat()
    if plate_id:
        metadata[Meta.PLATE_ID] = plate_id
    note_wavelength(metadata, wavelength)
    if label:
        metadata[Meta.LABEL] = label
    rows = c.ROWS_FOR_COLUMNS[columns]
    return plate_read(
        source,
        Instrument.GENERIC_GRID,
        wells,
        index=0,
        plate_id=plate_id,
        label=label,
        wavelength_nm=wavelength,
        read_time=read_time,
        rows=rows,
        columns=columns,
        metadata=metadata,
    )


def _year_first_stamp(line: CsvLine) -> datetime | None:
    for cell in line.cells:
        stamp = find_timestamp(cell, year_first_only=True)
        if stamp is not None:
            return stamp
    return None


def _check_decimal_mark(grid: GridBlock, columns: int) -> None:
    """One decimal mark per file: refuse grids that mix ``0,5`` and ``0.5``."""
    cells = [(row.line, cell) for row in grid.rows for cell in row.values(columns)]
    decimal_commas(cells, _COMMA_NUMBER, c.MIXED_DECIMAL)
