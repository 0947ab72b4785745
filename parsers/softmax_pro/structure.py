"""What a SoftMax Pro text export holds, as frozen values (cells still as text).

The reader builds these from the export's rows; the parser turns them into
PlateReads. ``PlateHeader.create`` reads the positional ``Plate:`` line and
checks it, naming the line in every error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from saa_lab.errors import InputFileError

from ..common import freeze
from ..table import Row
from . import constants as c

__all__ = [
    "Export",
    "Footer",
    "GroupTable",
    "PlateHeader",
    "PlateSection",
    "ReducedGrid",
    "TimePoint",
    "WavelengthData",
    "well_name",
]

_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")


def well_name(row_index: int, column: int) -> str:
    """``A1`` for row index 0 and column 1."""
    return f"{c.ROW_LETTERS[row_index]}{column}"


@dataclass(frozen=True)
class PlateHeader:
    """The ``Plate:`` line: what was read, how it is laid out, and which wells were read."""

    line: int
    name: str
    export_version: str
    export_format: str
    read_type: str
    read_mode: str
    data_type: str
    bottom_read: str | None
    kinetic_points: int
    run_time: str
    interval: str
    # One entry per wavelength (None where the read has none, e.g. luminescence's 0).
    wavelengths: tuple[float | None, ...]
    wavelength_texts: tuple[str, ...]
    excitation: tuple[str, ...]
    wells: int
    plate_rows: int
    plate_columns: int
    # The read area: 1-based first column/row and how many columns/rows were read.
    first_column: int
    columns: int
    first_row: int
    rows: int

    @staticmethod
    def create(row: Row) -> PlateHeader:
        cells = [cell.strip() for cell in row.cells]
        mode = cells[c.FIELD_READ_MODE] if len(cells) > c.FIELD_READ_MODE else ""
        if mode not in c.READ_MODES:
            raise InputFileError(c.UNKNOWN_READ_MODE.format(found=mode), line=row.number)
        shift = 1 if mode in c.SHIFTED_MODES else 0
        needed = c.FIELD_N_WELLS + shift + 1
        if len(cells) < needed:
            msg = c.SHORT_HEADER.format(found=len(cells), mode=mode, needed=needed)
            raise InputFileError(msg, line=row.number)
        fields = _Fields(cells, row.number)
        export_format = cells[c.FIELD_EXPORT_FORMAT]
        if export_format not in (c.PLATE_FORMAT, c.TIME_FORMAT):
            msg = c.UNKNOWN_FORMAT.format(found=export_format)
            raise InputFileError(msg, line=row.number)
        read_type = cells[c.FIELD_READ_TYPE]
        if read_type in c.UNSUPPORTED_READ_TYPES:
            msg = c.UNSUPPORTED_READ_TYPE.format(found=read_type)
            raise InputFileError(msg, line=row.number)
        if read_type not in c.READ_TYPES:
            raise InputFileError(c.UNKNOWN_READ_TYPE.format(found=read_type), line=row.number)
        data_type = cells[c.FIELD_DATA_TYPE + shift]
        if data_type and data_type != c.RAW:
            raise InputFileError(c.REDUCED_ONLY.format(found=data_type), line=row.number)

        wells = fields.integer(c.FIELD_N_WELLS + shift, "number of wells")
        if wells is None:
            raise InputFileError(
                c.MISSING_FIELD.format(field="number of wells", position=c.FIELD_N_WELLS + shift),
                line=row.number,
            )
        if wells not in c.PLATE_SHAPES:
            raise InputFileError(c.UNSUPPORTED_PLATE.format(wells=wells), line=row.number)
        plate_rows, plate_columns = c.PLATE_SHAPES[wells]
        points = fields.integer(c.FIELD_KINETIC_POINTS + shift, "number of kinetic points")
        if read_type == c.ENDPOINT:
            points = 1
        elif points is None or points < 1:
            raise InputFileError(
                c.MISSING_FIELD.format(
                    field="number of kinetic points", position=c.FIELD_KINETIC_POINTS + shift
                ),
                line=row.number,
            )
        texts, wavelengths = _wavelengths(fields, shift, row.number)
        first_row_field, rows_field = (f + shift for f in c.ROW_FIELDS[mode])
        first_column = fields.integer(c.FIELD_FIRST_COLUMN + shift, "first column") or 1
        columns = fields.integer(c.FIELD_N_COLUMNS + shift, "number of columns") or plate_columns
        first_row = fields.integer(first_row_field, "first row") or 1
        rows = fields.integer(rows_field, "number of rows") or plate_rows
        if (
            first_column < 1
            or columns < 1
            or first_column + columns - 1 > plate_columns
            or first_row < 1
            or rows < 1
            or first_row + rows - 1 > plate_rows
        ):
            msg = c.AREA_OUTSIDE_PLATE.format(
                first_column=first_column,
                columns=columns,
                first_row=first_row,
                rows=rows,
                wells=wells,
            )
            raise InputFileError(msg, line=row.number)
        excitation: tuple[str, ...] = ()
        if mode != "Absorbance":
            excitation = tuple(fields.text(c.FIELD_EXCITATION + shift).split())
        return PlateHeader(
            line=row.number,
            name=cells[c.FIELD_NAME],
            export_version=cells[c.FIELD_EXPORT_VERSION],
            export_format=export_format,
            read_type=read_type,
            read_mode=mode,
            data_type=data_type,
            bottom_read=cells[c.FIELD_BOTTOM_READ] if shift else None,
            kinetic_points=points,
            run_time=fields.text(c.FIELD_RUN_TIME + shift),
            interval=fields.text(c.FIELD_INTERVAL + shift),
            wavelengths=wavelengths,
            wavelength_texts=texts,
            excitation=excitation,
            wells=wells,
            plate_rows=plate_rows,
            plate_columns=plate_columns,
            first_column=first_column,
            columns=columns,
            first_row=first_row,
            rows=rows,
        )

    @property
    def is_kinetic(self) -> bool:
        return self.read_type == c.KINETIC

    def in_area(self, row_index: int, column: int) -> bool:
        """Whether the well (0-based row, 1-based column) lies in the area that was read."""
        return (
            self.first_row - 1 <= row_index < self.first_row - 1 + self.rows
            and self.first_column <= column < self.first_column + self.columns
        )

    @property
    def read_area(self) -> str:
        """``A1:H12`` — the corners of the area that was read."""
        first = well_name(self.first_row - 1, self.first_column)
        last = well_name(self.first_row + self.rows - 2, self.first_column + self.columns - 1)
        return f"{first}:{last}"


@dataclass(frozen=True)
class _Fields:
    """Positional fields of a Plate: line, with the line number for errors."""

    cells: Sequence[str]
    line: int

    def text(self, position: int) -> str:
        return self.cells[position] if position < len(self.cells) else ""

    def integer(self, position: int, name: str) -> int | None:
        text = self.text(position)
        if not text or text == "None":
            return None
        if not _INTEGER.match(text):
            msg = c.BAD_INTEGER.format(field=name, position=position, found=text)
            raise InputFileError(msg, line=self.line)
        return int(text)


def _wavelengths(
    fields: _Fields, shift: int, line: int
) -> tuple[tuple[str, ...], tuple[float | None, ...]]:
    texts = tuple(fields.text(c.FIELD_WAVELENGTHS + shift).split())
    declared = fields.integer(c.FIELD_N_WAVELENGTHS + shift, "number of wavelengths")
    count = declared if declared is not None else max(len(texts), 1)
    if count < 1:
        msg = c.MISSING_FIELD.format(
            field="number of wavelengths", position=c.FIELD_N_WAVELENGTHS + shift
        )
        raise InputFileError(msg, line=line)
    if not texts:
        return ("",) * count, (None,) * count
    if len(texts) != count:
        msg = c.WAVELENGTH_COUNT.format(declared=count, found=len(texts), text=" ".join(texts))
        raise InputFileError(msg, line=line)
    values: list[float | None] = []
    for text in texts:
        if not _NUMBER.match(text):
            raise InputFileError(c.BAD_WAVELENGTH.format(found=text), line=line)
        value = float(text)
        values.append(None if value == c.NO_WAVELENGTH else value)
    return texts, tuple(values)


@dataclass(frozen=True)
class TimePoint:
    """One reading of the plate: its time (kinetic), temperature and every cell as text.

    ``cells`` holds each well of the grid (or of the column header, in
    TimeFormat), empty cells included; which wells count is the parser's call.
    """

    line: int
    time: str
    seconds: float | None
    temperature: str
    cells: Mapping[str, str]

    def __post_init__(self) -> None:
        freeze(self, "cells")


@dataclass(frozen=True)
class WavelengthData:
    """The readings at one wavelength: one time point (endpoint) or many (kinetic)."""

    points: tuple[TimePoint, ...]


@dataclass(frozen=True)
class ReducedGrid:
    """The reduced data SoftMax computes from the readings (Vmax, blank-corrected, …)."""

    line: int
    cells: Mapping[str, str]

    def __post_init__(self) -> None:
        freeze(self, "cells")


@dataclass(frozen=True)
class PlateSection:
    """One ``Plate:`` block: its header, the readings per wavelength, and reduced grids."""

    header: PlateHeader
    reads: tuple[WavelengthData, ...]
    reduced: tuple[ReducedGrid, ...] = ()


@dataclass(frozen=True)
class GroupTable:
    """The table of one ``Group:`` block: column names, rows, and each column's formula."""

    line: int
    name: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    formulas: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze(self, "formulas")


@dataclass(frozen=True)
class Footer:
    """The line after the last block (original file name, save date, instrument)."""

    values: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze(self, "values")

    def get(self, key: str) -> str:
        return self.values.get(key, "")


@dataclass(frozen=True)
class Export:
    """The whole export: the plate sections and group tables in file order, and the footer."""

    blocks_line: int
    sections: tuple[PlateSection | GroupTable, ...]
    footer: Footer
