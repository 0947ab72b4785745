"""Generic 8×12 grid CSV → one PlateRead.

A plate written as a plain grid: 8 rows of 12 values, comma- or
semicolon-separated, with or without row letters (A–H) and a column header
(1–12, optionally after an empty, ``<>`` or ``Well`` corner cell). ``Key,Value``
lines around the grid name the plate (``Plate ID``/``Barcode``), the
``Wavelength`` and the ``Label``; other keys are kept as metadata.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from saa_lab.domain import PlateRead, SourceFile, WellValue
from saa_lab.errors import InputFileError

from ..base import Instrument, PlateParser, decode, parse_cell
from . import constants as c
from .reader import CsvLine, GridBlock, check_grid, read_blocks, split_lines

__all__ = ["GenericGridParser"]

_WAVELENGTH = re.compile(r"^(\d+(?:[.,]\d+)?)\s*(?:nm)?$", re.IGNORECASE)
_UNIT_SUFFIX = re.compile(r"\s*[(\[]\s*nm\s*[)\]]$", re.IGNORECASE)
_COMMA_NUMBER = re.compile(r"\d,\d")
_POINT_NUMBER = re.compile(r"\d\.\d")


class GenericGridParser(PlateParser):
    """One 8×12 plate as a comma- or semicolon-separated grid."""

    INSTRUMENT = Instrument.GENERIC_GRID
    DISPLAY_NAME = c.DISPLAY_NAME
    SUPPORTED_EXTENSIONS = (".csv", ".txt")

    @classmethod
    def sniff(cls, head: str) -> bool:
        for delimiter in c.DELIMITERS:
            decimal_comma = delimiter == c.DECIMAL_COMMA_DELIMITER
            lines = split_lines(head, delimiter)
            blocks, _ = read_blocks(lines, decimal_comma=decimal_comma)
            if any(block.has_values and block.has_full_run() for block in blocks):
                return True
        return False

    def parse(self, source: SourceFile) -> list[PlateRead]:
        text, encoding = decode(source)
        try:
            return [_parse_text(text, source, encoding)]
        except InputFileError as err:
            err.path = err.path or source.original_path
            raise


def _choose_delimiter(text: str) -> tuple[str, list[GridBlock], list[CsvLine]]:
    """The delimiter under which the file shows the largest grid of values."""
    best: tuple[int, str, list[GridBlock], list[CsvLine]] | None = None
    for delimiter in c.DELIMITERS:
        decimal_comma = delimiter == c.DECIMAL_COMMA_DELIMITER
        blocks, others = read_blocks(split_lines(text, delimiter), decimal_comma=decimal_comma)
        score = max((len(b.rows) for b in blocks if b.has_values), default=0)
        if score and (best is None or score > best[0]):
            best = (score, delimiter, blocks, others)
    if best is None:
        raise InputFileError(c.NO_GRID)
    return best[1], best[2], best[3]


def _parse_text(text: str, source: SourceFile, encoding: str) -> PlateRead:
    delimiter, blocks, others = _choose_delimiter(text)
    grid = check_grid(blocks)
    decimal_comma = delimiter == c.DECIMAL_COMMA_DELIMITER
    if decimal_comma:
        _check_decimal_mark(grid)
    wells: dict[str, WellValue] = {}
    for index, row in enumerate(grid.rows):
        letter = row.letter or c.ROW_LETTERS[index]
        for column, raw in enumerate(row.values, start=1):
            wells[f"{letter}{column}"] = parse_cell(raw, decimal_comma=decimal_comma)

    metadata: dict[str, str] = {c.META_DELIMITER: delimiter, c.META_ENCODING: encoding}
    skipped = [b.first_line for b in blocks if not b.has_values and b.rows]
    if skipped:
        metadata[c.META_SKIPPED_GRID] = ", ".join(str(line) for line in skipped)
    plate_id: str | None = None
    label: str | None = None
    wavelength: float | None = None
    for line in others:
        pair = _key_value(line)
        if pair is None:
            continue
        key, value = pair
        normal = _UNIT_SUFFIX.sub("", key.casefold())
        if normal in c.PLATE_ID_KEYS:
            plate_id = plate_id or value
        elif normal in c.WAVELENGTH_KEYS:
            wavelength = wavelength or _wavelength(value, line.number)
        elif normal in c.LABEL_KEYS:
            label = label or value
        else:
            metadata.setdefault(key, value)
    return PlateRead(
        format=Instrument.GENERIC_GRID.value,
        source_path=source.original_path,
        source_sha256=source.sha256,
        wells=wells,
        index=0,
        plate_id=plate_id,
        label=label,
        wavelength_nm=wavelength,
        kind="endpoint",
        rows=c.ROWS,
        columns=c.COLUMNS,
        derived=False,
        metadata=metadata,
    )


def _key_value(line: CsvLine) -> tuple[str, str] | None:
    """``Key,Value`` (further cells joined) or a single ``Key: Value`` cell; else None."""
    cells = [cell for cell in line.cells if cell]
    if len(cells) >= 2:
        key, value = cells[0], " ".join(cells[1:])
    elif len(cells) == 1 and ":" in cells[0]:
        key, _, value = cells[0].partition(":")
    else:
        return None
    key = key.strip().removesuffix(":").strip()
    value = value.strip()
    if not key or not value:
        return None
    return key, value


def _wavelength(value: str, line: int) -> float:
    match = _WAVELENGTH.match(value.strip())
    if not match:
        raise InputFileError(c.BAD_WAVELENGTH.format(found=value), line=line)
    return float(match.group(1).replace(",", "."))


def _check_decimal_mark(grid: GridBlock) -> None:
    """A semicolon file uses one decimal mark: refuse grids that mix ``0,5`` and ``0.5``."""
    rows: Sequence[tuple[int, str]] = [(row.line, cell) for row in grid.rows for cell in row.values]
    commas = [(line, cell) for line, cell in rows if _COMMA_NUMBER.search(cell)]
    points = [(line, cell) for line, cell in rows if _POINT_NUMBER.search(cell)]
    if commas and points:
        line, cell = max(commas[0], points[0])
        raise InputFileError(c.MIXED_DECIMAL.format(cell=cell), line=line)
