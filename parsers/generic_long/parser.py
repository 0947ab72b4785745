"""Generic long table (one line per well) → one PlateRead per value column.

A header line names a well column (``Well``, ``Well ID``, ``Position``) and one
or more value columns (``Value``, ``OD``, ``Abs``, ``Absorbance``, ``OD600``,
``710``, Gen5's bracketed calculated reads such as ``[Blanked-RFU]``); other
columns (sample names, types) are allowed and kept out of the values. Lines
before the header are a title and ``key, value`` metadata (``Plate ID``,
``Wavelength``, ``Date``, ``Plate type``). Comma, semicolon or tab separated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from saa_lab.domain import Meta, PlateRead, SourceFile, WellValue
from saa_lab.errors import InputFileError

from ..base import Instrument, PlateParser, decode, parse_cell
from ..common import (
    PLATE_SHAPES,
    decimal_commas,
    key_value,
    metadata_key,
    metadata_wavelength,
    note_wavelength,
    plate_read,
    smallest_plate,
)
from ..dates import find_timestamp
from ..generic_grid.parser import has_vendor_marker
from ..table import Row, split_text
from . import constants as c
from .reader import (
    LongTable,
    count_well_rows,
    is_derived_header,
    locate,
    read_table,
    wavelength_of_header,
)

__all__ = ["GenericLongParser"]

_PLATE_SIZE = re.compile(r"\b(6|12|24|48|96|384)\b")
_COMMA_DECIMAL = re.compile(r"^[+-]?\d+,\d+([eE][+-]?\d+)?$")


class GenericLongParser(PlateParser):
    """A table with one line per well: a well column and one or more value columns."""

    INSTRUMENT = Instrument.GENERIC_LONG
    DISPLAY_NAME = c.DISPLAY_NAME
    SUPPORTED_EXTENSIONS = (".csv", ".txt", ".tsv")

    @classmethod
    def sniff(cls, head: str) -> bool:
        if has_vendor_marker(head):
            return False
        for delimiter in c.DELIMITERS:
            if delimiter not in head:
                continue
            rows = split_text(head.removeprefix("\ufeff"), delimiter)
            found = locate(rows)
            if found is not None:
                index, _, column = found
                return count_well_rows(rows, index + 1, column) >= c.MIN_ROWS
        return False

    def read_file(self, source: SourceFile) -> list[PlateRead]:
        text, encoding = decode(source)
        return _parse_text(text.removeprefix("\ufeff"), source, encoding)


def _choose(text: str) -> tuple[str, list[Row]]:
    """The first delimiter (tab, semicolon, comma) under which a long table header appears."""
    for delimiter in c.DELIMITERS:
        if delimiter not in text:
            continue
        rows = split_text(text, delimiter)
        if locate(rows) is not None:
            return delimiter, rows
    raise InputFileError(c.NO_TABLE)


@dataclass
class _Preamble:
    """What the lines before the header say; standard facts apart, the rest as metadata."""

    metadata: dict[str, str] = field(default_factory=dict)
    plate_id: str | None = None
    wavelength: tuple[str, int] | None = None
    read_time: str | None = None
    plate_size: str | None = None


def _parse_text(text: str, source: SourceFile, encoding: str) -> list[PlateRead]:
    delimiter, rows = _choose(text)
    table = read_table(rows)
    decimal_comma = _decimal_comma(table, delimiter)
    preamble = _preamble(table)
    rows_n, columns_n = _shape(table, preamble.plate_size)

    metadata: dict[str, str] = {
        **preamble.metadata,
        c.META_DELIMITER: delimiter,
        Meta.ENCODING: encoding,
        c.META_COLUMNS: ", ".join(name for name in table.header.names if name),
        c.META_WELL_COLUMN: table.header.names[table.well_column],
    }
    read_time: datetime | None = None
    if preamble.read_time:
        stamp = find_timestamp(preamble.read_time)
        if stamp is not None:
            read_time = stamp.replace(tzinfo=source.timezone)
            metadata[Meta.READ_TIME] = read_time.isoformat()
    if preamble.plate_id:
        metadata[Meta.PLATE_ID] = preamble.plate_id
    file_wavelength: float | None = None
    if preamble.wavelength:
        file_wavelength = metadata_wavelength(*preamble.wavelength, c.BAD_WAVELENGTH)

    value_columns = table.header.value_columns
    reads: list[PlateRead] = []
    for column in value_columns:
        label = table.header.names[column]
        wavelength = wavelength_of_header(label)
        if wavelength is None and len(value_columns) == 1:
            wavelength = file_wavelength
        wells: dict[str, WellValue] = {
            row.well: parse_cell(row.cells[column], decimal_comma=decimal_comma)
            for row in sorted(table.rows, key=lambda r: (r.row, r.column))
        }
        read_meta = {**metadata, Meta.LABEL: label}
        note_wavelength(read_meta, wavelength)
        reads.append(
            plate_read(
                source,
                Instrument.GENERIC_LONG,
                wells,
                index=len(reads),
                plate_id=preamble.plate_id,
                label=label,
                wavelength_nm=wavelength,
                read_time=read_time,
                rows=rows_n,
                columns=columns_n,
                derived=is_derived_header(label),
                metadata=read_meta,
            )
        )
    return reads


def _preamble(table: LongTable) -> _Preamble:
    """Title and ``key, value`` lines before the header."""
    found = _Preamble()
    for row in table.preamble:
        cells = [cell.strip() for cell in row.cells if cell.strip()]
        if not cells:
            continue
        if len(cells) == 1 and ":" not in cells[0]:
            found.metadata.setdefault(c.META_TITLE, cells[0])
            continue
        pair = key_value(cells)
        if pair is None:
            continue
        key, value = pair
        normal = metadata_key(" ".join(key.split()))
        if normal in c.PLATE_ID_KEYS:
            found.plate_id = found.plate_id or value
        elif normal in c.WAVELENGTH_KEYS:
            found.wavelength = found.wavelength or (value, row.number)
        elif normal in c.DATE_KEYS:
            found.read_time = found.read_time or value
        elif normal in c.PLATE_SIZE_KEYS:
            found.plate_size = found.plate_size or value
        found.metadata.setdefault(key, value)
    return found


def _shape(table: LongTable, size_text: str | None) -> tuple[int, int]:
    """The plate's rows and columns: as the metadata declares, else 96 or 384 wells."""
    shape: tuple[int, int] | None = None
    if size_text:
        match = _PLATE_SIZE.search(size_text)
        if match:
            shape = PLATE_SHAPES[int(match.group(1))]
    if shape is None:
        shape = smallest_plate((row.row, row.column) for row in table.rows)
    rows_n, columns_n = shape
    for row in table.rows:
        if row.row >= rows_n or row.column > columns_n:
            msg = c.WELL_OUTSIDE.format(well=row.well, rows=rows_n, columns=columns_n)
            raise InputFileError(msg, line=row.line, well=row.well)
    return shape


def _decimal_comma(table: LongTable, delimiter: str) -> bool:
    """Decide once per file; never in comma-separated files; refuse a mix of marks."""
    if delimiter == ",":
        return False
    cells = [(row.line, row.cells[n]) for row in table.rows for n in table.header.value_columns]
    return decimal_commas(cells, _COMMA_DECIMAL, c.MIXED_DECIMAL)
