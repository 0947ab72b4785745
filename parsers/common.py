"""What the vendor parsers share beyond cells and decoding (:mod:`.base`), rows
(:mod:`.table`) and dates (:mod:`.dates`).

Plate shapes and well names, wavelengths written in labels and metadata, ``Key: value``
lines, reads held as raw text until the file's decimal mark is known, and the PlateRead
built from them. Where vendors write things differently (their label conventions, their
well-name syntax) they pass their own patterns or keep a small wrapper; the logic is here.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Protocol

from saa_lab.domain import KineticSeries, Meta, NoValueReason, PlateRead, SourceFile, WellValue
from saa_lab.errors import InputFileError

from .base import Instrument, parse_cell
from .table import Row, split_text

__all__ = [
    "META_DATE_ORDER",
    "PLATE_SHAPES",
    "ROWS_FOR_COLUMNS",
    "ROW_LETTERS",
    "WAVELENGTH_RANGE_NM",
    "RawSeries",
    "decimal_commas",
    "freeze",
    "geometry_for",
    "in_wavelength_range",
    "key_value",
    "local_read_time",
    "metadata_key",
    "metadata_wavelength",
    "note_wavelength",
    "parse_well",
    "plate_read",
    "present",
    "raw_cells",
    "series_wells",
    "smallest_plate",
    "split_rows",
    "wavelength_in",
    "well_label",
]

ROW_LETTERS = "ABCDEFGHIJKLMNOP"
# Plate geometry: wells -> (rows, columns); and the rows of a grid with so many columns.
PLATE_SHAPES: dict[int, tuple[int, int]] = {
    6: (2, 3),
    12: (3, 4),
    24: (4, 6),
    48: (6, 8),
    96: (8, 12),
    384: (16, 24),
}
ROWS_FOR_COLUMNS: dict[int, int] = {columns: rows for rows, columns in PLATE_SHAPES.values()}
# Absorbance readers: a number outside this range in a label is not a wavelength.
WAVELENGTH_RANGE_NM = (200.0, 1100.0)
# Read metadata: the order a read's date was read in (dates.DAY_FIRST, …).
META_DATE_ORDER = "date_order"

# A well name with at most 2 or 3 column digits (leading zeros aside).
_WELLS = {digits: re.compile(rf"^([A-Za-z])\s*0*(\d{{1,{digits}}})$") for digits in (2, 3)}
_METADATA_WAVELENGTH = re.compile(r"^(\d+(?:[.,]\d+)?)\s*(?:nm)?$", re.IGNORECASE)
_UNIT_SUFFIX = re.compile(r"\s*[(\[]\s*nm\s*[)\]]$", re.IGNORECASE)
_POINT_NUMBER = re.compile(r"\d\.\d")


# --- wells and plates ----------------------------------------------------------------------------


def parse_well(text: str, *, column_digits: int = 3) -> tuple[int, int] | None:
    """``A1``, ``A01``, ``a 1`` → (row index from 0, column from 1); None if not a well.

    ``column_digits`` (2 or 3) limits the column number as written, leading zeros aside.
    """
    match = _WELLS[column_digits].match(text.strip())
    if not match:
        return None
    column = int(match.group(2))
    if column < 1:
        return None
    return ord(match.group(1).upper()) - ord("A"), column


def well_label(row: int, column: int) -> str:
    """``A1`` for row index 0 and column 1."""
    return f"{chr(ord('A') + row)}{column}"


def smallest_plate(positions: Iterable[tuple[int, int]], *, at_least: int = 96) -> tuple[int, int]:
    """(rows, columns) of the smallest plate of ``at_least`` wells or more that holds
    every (row index, column): 96 (8×12) or 384 (16×24) by default; 384 when none does."""
    last_row = last_column = 0
    for row, column in positions:
        last_row = max(last_row, row + 1)
        last_column = max(last_column, column)
    for wells, (rows, columns) in sorted(PLATE_SHAPES.items()):
        if wells >= at_least and last_row <= rows and last_column <= columns:
            return rows, columns
    return PLATE_SHAPES[384]


def geometry_for(wells: Iterable[str], *, at_least: int = 96) -> tuple[int, int]:
    """:func:`smallest_plate` of canonical well names (``A1`` … ``P24``)."""
    return smallest_plate(
        ((ord(well[0]) - ord("A"), int(well[1:])) for well in wells), at_least=at_least
    )


# --- wavelengths and metadata lines ------------------------------------------------------------


def in_wavelength_range(value: float) -> float | None:
    low, high = WAVELENGTH_RANGE_NM
    return value if low <= value <= high else None


def wavelength_in(text: str, patterns: Iterable[re.Pattern[str]]) -> float | None:
    """The nm that the first pattern found in ``text`` captures (group 1), if in range.

    The patterns are a vendor's ways of writing a wavelength in a label, most telling
    first: the first that matches decides, an out-of-range number gives None.
    """
    for pattern in patterns:
        match = pattern.search(text)
        if match:
            return in_wavelength_range(float(match.group(1)))
    return None


def metadata_wavelength(value: str, line: int, message: str) -> float:
    """A ``Wavelength`` metadata value: ``710``, ``710 nm``, ``405,5``.

    Raises InputFileError with ``message`` (``{found}``: the value) naming the line.
    """
    match = _METADATA_WAVELENGTH.match(value.strip())
    if not match:
        raise InputFileError(message.format(found=value), line=line)
    return float(match.group(1).replace(",", "."))


def present(pairs: Mapping[str, str | None]) -> dict[str, str]:
    """The metadata pairs that have a value (not None, not empty), in order."""
    return {key: value for key, value in pairs.items() if value}


def note_wavelength(metadata: dict[str, str], wavelength: float | None) -> None:
    """Record a read's wavelength in its metadata (``710``, ``562.5``) when it has one."""
    if wavelength is not None:
        metadata[Meta.WAVELENGTH] = f"{wavelength:g}"


def key_value(cells: Sequence[str]) -> tuple[str, str] | None:
    """``Key, Value`` (further cells joined) or a single ``Key: Value`` cell; else None.

    ``cells`` are a line's non-empty cells.
    """
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


def metadata_key(key: str) -> str:
    """A metadata key for lookup: case-folded, without a unit suffix (``Wavelength (nm)``)."""
    return _UNIT_SUFFIX.sub("", key.casefold())


def decimal_commas(cells: Sequence[tuple[int, str]], comma: re.Pattern[str], message: str) -> bool:
    """Whether the (line, cell) values write decimal commas (``comma`` finds one in a cell).

    One decimal mark per file: when some cells have a comma and some a point (``0.5``),
    raises InputFileError with ``message`` (``{cell}``) at the later of the first of each.
    """
    commas = [(line, cell) for line, cell in cells if comma.search(cell)]
    points = [(line, cell) for line, cell in cells if _POINT_NUMBER.search(cell)]
    if commas and points:
        line, cell = max(commas[0], points[0])
        raise InputFileError(message.format(cell=cell), line=line)
    return bool(commas)


# --- raw reads ------------------------------------------------------------------------------------


def split_rows(text: str, delimiter: str) -> list[Row]:
    """:func:`.table.split_text`, raising InputFileError when the text cannot be split."""
    try:
        return split_text(text, delimiter)
    except csv.Error as exc:
        raise InputFileError(f"the file cannot be split into fields: {exc}") from exc


def freeze(instance: object, *names: str) -> None:
    """In a frozen dataclass's ``__post_init__``: keep read-only copies of mapping fields."""
    for name in names:
        object.__setattr__(instance, name, MappingProxyType(dict(getattr(instance, name))))


class _HasCells(Protocol):
    @property
    def cells(self) -> Mapping[str, tuple[str, ...]]: ...


class RawSeries:
    """Base of a frozen dataclass holding one read as the file lays it out.

    ``cells[well]`` holds one raw cell per time point (one for an endpoint read);
    ``times_s`` is empty for an endpoint read and otherwise counts seconds from the
    read's first time point.
    """

    cells: Mapping[str, tuple[str, ...]]
    times_s: tuple[float, ...]
    metadata: Mapping[str, str]

    def __post_init__(self) -> None:
        freeze(self, "cells", "metadata")

    @property
    def kinetic(self) -> bool:
        return len(self.times_s) > 1


def raw_cells(reads: Iterable[_HasCells]) -> Iterator[str]:
    """Every raw cell of the reads (to decide the file's decimal mark)."""
    for read in reads:
        for cells in read.cells.values():
            yield from cells


def _reading(raw: str, well: str, saturated: frozenset[str], decimal_comma: bool) -> WellValue:
    value = parse_cell(raw, decimal_comma=decimal_comma)
    if saturated and well in saturated and value.value is not None:
        # The file marks this well saturated: its number is not a reading.
        return WellValue(None, value.raw, NoValueReason.OVERFLOW)
    return value


def series_wells(
    read: RawSeries, *, decimal_comma: bool, saturated: frozenset[str] = frozenset()
) -> tuple[dict[str, WellValue], KineticSeries | None]:
    """Endpoint: the wells with a cell; kinetic: every well read at least once, last reading.

    A number in a ``saturated`` well is an overflow, not a reading.
    """
    if not read.kinetic:
        wells = {
            well: _reading(cells[0], well, saturated, decimal_comma)
            for well, cells in read.cells.items()
            if cells and cells[0].strip()
        }
        return wells, None
    readings = {
        well: tuple(_reading(raw, well, saturated, decimal_comma) for raw in cells)
        for well, cells in read.cells.items()
        if any(raw.strip() for raw in cells)
    }
    last = {well: series[-1] for well, series in readings.items()}
    return last, KineticSeries(times_s=read.times_s, readings=readings)


# --- PlateReads -----------------------------------------------------------------------------------


def local_read_time(
    text: str,
    *,
    line: int | None,
    source: SourceFile,
    parse: Callable[[str], tuple[datetime, str]],
    message: str,
) -> tuple[datetime, dict[str, str]]:
    """A local date and time read by a vendor's ``parse`` (a naive datetime and the date
    order used; ValueError when unreadable) in the lab's zone, and its read metadata.

    Raises InputFileError with ``message`` (``{found}``: the text) naming the line.
    """
    try:
        naive, order = parse(text)
    except ValueError as exc:
        raise InputFileError(message.format(found=text), line=line) from exc
    aware = naive.replace(tzinfo=source.timezone)
    return aware, {Meta.READ_TIME: naive.isoformat(), META_DATE_ORDER: order}


def plate_read(
    source: SourceFile,
    instrument: Instrument,
    wells: Mapping[str, WellValue],
    *,
    index: int,
    rows: int,
    columns: int,
    metadata: Mapping[str, str],
    plate_index: int = 0,
    plate_id: str | None = None,
    label: str | None = None,
    wavelength_nm: float | None = None,
    read_time: datetime | None = None,
    derived: bool = False,
    kinetic: KineticSeries | None = None,
) -> PlateRead:
    """One read of ``source`` in ``instrument``'s format; kinetic when it has a series."""
    return PlateRead(
        format=instrument.value,
        source_path=source.original_path,
        source_sha256=source.sha256,
        wells=wells,
        index=index,
        plate_index=plate_index,
        plate_id=plate_id,
        label=label,
        wavelength_nm=wavelength_nm,
        read_time=read_time,
        kind="kinetic" if kinetic is not None else "endpoint",
        rows=rows,
        columns=columns,
        derived=derived,
        metadata=metadata,
        kinetic=kinetic,
    )
