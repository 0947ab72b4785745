"""SkanIt exports → :class:`Export`: the file's layout read and checked, cells kept raw.

Three layouts:

* **session text** (SkanIt 2.x, Varioskan): titled sections of indented
  ``key … value`` lines, then one long table per step, one row per well ×
  reading × wavelength;
* **results text** (Multiskan Spectrum, "Results of Photometric1"):
  ``Plate:1 - Wavelength:340`` then ``Iteration: n`` blocks, each a plate grid
  without row or column labels;
* **workbook** (SkanIt 6/7, Multiskan Sky): a ``General information`` sheet and
  one ``Raw data <wl> nm`` sheet per wavelength, one row per well × reading.

Every error names the line (and the sheet for workbooks); the parser adds the file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from saa_lab.errors import InputFileError

from ..common import parse_well as _parse_well
from ..common import smallest_plate, well_label
from ..table import Row, Sheet, decide_decimal_comma
from . import constants as c
from .structure import Export, Measurement, Reading

__all__ = [
    "LAYOUT_RESULTS",
    "LAYOUT_SESSION",
    "LAYOUT_WORKBOOK",
    "is_results_text",
    "is_session_text",
    "parse_well",
    "plate_shape",
    "read_results",
    "read_session",
    "read_workbook_export",
]

LAYOUT_SESSION = "session text"
LAYOUT_RESULTS = "results text"
LAYOUT_WORKBOOK = "workbook"

_PLATE_LINE = re.compile(c.PLATE_LINE, re.IGNORECASE)
_WAVELENGTH_IN_PLATE = re.compile(c.WAVELENGTH_IN_PLATE_LINE, re.IGNORECASE)
_ITERATION = re.compile(c.ITERATION_LINE, re.IGNORECASE)
_PLATE_WELLS = re.compile(r"(\d+)[\s-]*well", re.IGNORECASE)
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


# --- small helpers ------------------------------------------------------------------------------


def parse_well(text: str) -> tuple[int, int] | None:
    """``A1``, ``A01``, ``a 1`` → (row index from 0, column from 1); None if not a well.

    SkanIt writes at most two column digits.
    """
    return _parse_well(text, column_digits=2)


def plate_shape(template: str | None, wells: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """Rows and columns: from a plate template naming its wells (``96-well …``), else the
    smallest of 96 or 384 wells that holds every well the file names."""
    if template:
        match = _PLATE_WELLS.search(template)
        if match and int(match.group(1)) in c.PLATE_SHAPES:
            return c.PLATE_SHAPES[int(match.group(1))]
    return smallest_plate(wells)


def _key(text: str) -> str:
    return "".join(text.split()).casefold()


def _number(text: str, *, decimal_comma: bool) -> float | None:
    value = text.strip()
    if decimal_comma:
        value = value.replace(",", ".")
    if not _NUMBER.match(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _single(row: Row) -> str | None:
    """The only non-empty cell of a row, wherever it is; None for 0 or 2+ cells."""
    cells = [cell.strip() for cell in row.cells if cell.strip()]
    return cells[0] if len(cells) == 1 else None


def _first_line(rows: Sequence[Row]) -> str:
    for row in rows:
        if not row.is_blank:
            return row.filled[0] if row.filled[0] else (_single(row) or "")
    return ""


# --- detection ------------------------------------------------------------------------------------


def is_session_text(rows: Sequence[Row]) -> bool:
    head = rows[: c.SNIFF_LINES]
    if _first_line(head) != c.SESSION_FIRST_TITLE:
        return False
    text = "\n".join("\t".join(row.filled) for row in head)
    return any(marker in text for marker in c.SESSION_MARKERS)


def is_results_text(rows: Sequence[Row]) -> bool:
    head = rows[: c.SNIFF_LINES]
    if not _first_line(head).startswith(c.RESULTS_PREFIX):
        return False
    return any(_PLATE_LINE.match(_single(row) or "") for row in head)


# --- session text (Varioskan) ---------------------------------------------------------------------


def _is_table_header(row: Row) -> bool:
    names = {_key(cell) for cell in row.filled}
    return c.COL_WELL in names and c.COL_VALUE in names


def read_session(rows: Sequence[Row]) -> Export:
    header: dict[str, str] = {}
    header_lines: dict[str, int] = {}
    wavelengths: list[str] = []
    title: str | None = None
    tables: list[tuple[str, list[_Record]]] = []
    i = 0
    while i < len(rows):
        row = rows[i]
        filled = row.filled
        if not filled:
            i += 1
            continue
        if _is_table_header(row):
            records, i = _read_table(rows, i)
            tables.append((title or c.COL_VALUE.title(), records))
            continue
        if filled[0] and len(filled) == 1:
            if filled[0].casefold() not in c.NEUTRAL_TITLES:
                title = filled[0]
        elif not filled[0] and not tables:
            cells = [cell for cell in filled if cell]
            if len(cells) >= 2:
                key, value = cells[0], cells[1]
                if key == c.KEY_WAVELENGTH:
                    wavelengths.append(value)
                if key not in header:
                    header[key] = value
                    header_lines[key] = row.number
        i += 1
    if not tables:
        raise InputFileError(c.NO_TABLE)
    if len(wavelengths) > 1:
        header[c.KEY_WAVELENGTH] = ", ".join(wavelengths)

    cells = [r.raw for _, records in tables for r in records]
    cells += [r.time for _, records in tables for r in records]
    decimal_comma = decide_decimal_comma(cells, "\t")
    parsed = [(label, _readings(records, decimal_comma)) for label, records in tables]
    all_wells = [(r.row, r.column) for _, records in tables for r in records]
    rows_n, columns_n = plate_shape(header.get(c.KEY_PLATE_TEMPLATE), all_wells)

    measurements: list[Measurement] = []
    for label, groups in parsed:
        derived = not label.casefold().startswith(c.MEASUREMENT_PREFIXES)
        for (plate, wavelength), readings in groups.items():
            measurements.append(
                Measurement(
                    label=label,
                    wavelength_text=wavelength or None,
                    derived=derived,
                    readings=tuple(readings),
                    rows=rows_n,
                    columns=columns_n,
                    plate_key=plate,
                    plate_id=plate or None,
                )
            )
    started = header.get(c.KEY_RUN_STARTED)
    return Export(
        measurements=tuple(measurements),
        header=header,
        read_time_text=started,
        read_time_line=header_lines.get(c.KEY_RUN_STARTED),
        decimal_comma=decimal_comma,
        layout=LAYOUT_SESSION,
    )


@dataclass(frozen=True, slots=True)
class _Record:
    """One long-table row, checked for shape; numbers are read once the decimal mark is known."""

    line: int
    plate: str
    well: str
    row: int
    column: int
    raw: str
    time: str
    wavelength: str
    read: str


def _read_table(rows: Sequence[Row], start: int) -> tuple[list[_Record], int]:
    header = rows[start].filled
    names = [_key(cell) for cell in header]
    index = {name: n for n, name in enumerate(names) if name}
    for required in (c.COL_WELL, c.COL_VALUE):
        if required not in index:
            raise InputFileError(c.TABLE_COLUMNS.format(column=required), line=rows[start].number)
    records: list[_Record] = []
    i = start + 1
    while True:
        i = _skip_stray_blanks(rows, i, len(header), index[c.COL_WELL])
        if i >= len(rows) or rows[i].is_blank:
            break
        row = rows[i]
        filled = row.filled
        if len(filled) != len(header):
            msg = c.SHORT_ROW.format(found=len(filled), expected=len(header))
            raise InputFileError(msg, line=row.number)
        well_text = filled[index[c.COL_WELL]]
        position = parse_well(well_text)
        if position is None:
            raise InputFileError(c.BAD_WELL.format(found=well_text), line=row.number)

        def cell(name: str, cells: tuple[str, ...] = filled) -> str:
            return cells[index[name]] if name in index else ""

        records.append(
            _Record(
                line=row.number,
                plate=cell(c.COL_PLATE),
                well=well_label(*position),
                row=position[0],
                column=position[1],
                raw=cell(c.COL_VALUE),
                time=cell(c.COL_TIME),
                wavelength=cell(c.COL_WAVELENGTH),
                read=cell(c.COL_READ),
            )
        )
        i += 1
    return records, i


def _skip_stray_blanks(rows: Sequence[Row], i: int, width: int, well_column: int) -> int:
    """Past blank lines that only split a table (SkanIt's stray LFs): the next non-blank
    line continues the table when it has the header's width and a well in the well column."""
    j = i
    while j < len(rows) and rows[j].is_blank:
        j += 1
    if j == i or j >= len(rows):
        return i
    filled = rows[j].filled
    if len(filled) == width and parse_well(filled[well_column]) is not None:
        return j
    return i


def _readings(
    records: Sequence[_Record], decimal_comma: bool
) -> dict[tuple[str, str], list[Reading]]:
    """Group a table's rows by (plate, wavelength); number each well's readings."""
    groups: dict[tuple[str, str], list[Reading]] = {}
    counts: dict[tuple[str, str, str], int] = {}
    for record in records:
        key = (record.plate, record.wavelength)
        if record.read:
            reading = _whole(record.read, record.line)
        else:
            count_key = (record.plate, record.wavelength, record.well)
            reading = counts.get(count_key, 0) + 1
            counts[count_key] = reading
        time_s: float | None = None
        if record.time:
            time_s = _number(record.time, decimal_comma=decimal_comma)
            if time_s is None:
                raise InputFileError(c.BAD_TIME.format(found=record.time), line=record.line)
        groups.setdefault(key, []).append(
            Reading(record.line, record.well, record.raw, reading, time_s)
        )
    return groups


def _whole(text: str, line: int) -> int:
    if not text.isdigit() or int(text) < 1:
        raise InputFileError(c.BAD_READING_INDEX.format(found=text), line=line)
    return int(text)


# --- results text (Multiskan Spectrum) ------------------------------------------------------------


@dataclass
class _Plate:
    """A 'Plate:n - Wavelength:w' line and the grids read under it (builder)."""

    number: str
    rest: str
    line: int
    iterations: list[tuple[int, list[Row]]] = field(default_factory=list)

    @property
    def wavelength(self) -> str | None:
        match = _WAVELENGTH_IN_PLATE.search(self.rest)
        return match.group(1) if match else None


def _marker(row: Row) -> str | None:
    """The text of a ``Plate:`` or ``Iteration:`` line, else None."""
    single = _single(row)
    if single and (_PLATE_LINE.match(single) or _ITERATION.match(single)):
        return single
    return None


def _grid_rows(rows: Sequence[Row], start: int) -> tuple[list[Row], int]:
    """Lines with a tab (empty first cell) from ``start`` up to an empty line or a marker."""
    grid: list[Row] = []
    i = start
    while i < len(rows):
        row = rows[i]
        if len(row.cells) < 2 or row.cells[0].strip() or _marker(row):
            break
        grid.append(row)
        i += 1
    return grid, i


def read_results(rows: Sequence[Row]) -> Export:
    label = _first_line(rows).removeprefix(c.RESULTS_PREFIX).strip()
    plates: list[_Plate] = []
    i = 0
    while i < len(rows):
        row = rows[i]
        marker = _marker(row)
        if marker is None:
            if plates and len(row.cells) > 1 and not row.cells[0].strip():
                # A grid straight after the Plate line: a single (endpoint) read.
                grid, i = _grid_rows(rows, i)
                plate = plates[-1]
                if plate.iterations:
                    raise InputFileError(c.GRID_WITHOUT_ITERATION, line=grid[0].number)
                plate.iterations.append((0, grid))
                continue
            if not plates and not row.is_blank and len(row.filled) > 1:
                raise InputFileError(c.NO_PLATE_LINE, line=row.number)
            i += 1
            continue
        plate_match = _PLATE_LINE.match(marker)
        if plate_match:
            plates.append(_Plate(plate_match.group(1), plate_match.group(2) or "", row.number))
            i += 1
            continue
        iteration_match = _ITERATION.match(marker)
        assert iteration_match is not None  # _marker matched one of the two
        number = int(iteration_match.group(1))
        if not plates:
            raise InputFileError(c.NO_PLATE_LINE, line=row.number)
        plate = plates[-1]
        previous = plate.iterations[-1][0] if plate.iterations else 0
        if number != previous + 1:
            msg = c.ITERATION_ORDER.format(found=number, previous=previous, expected=previous + 1)
            raise InputFileError(msg, line=row.number)
        j = i + 1
        while j < len(rows) and len(rows[j].cells) < 2 and rows[j].is_blank:
            j += 1
        grid, i = _grid_rows(rows, j)
        if not grid:
            raise InputFileError(c.EMPTY_ITERATION.format(number=number), line=row.number)
        plate.iterations.append((number, grid))

    if not any(plate.iterations for plate in plates):
        raise InputFileError(c.NO_GRIDS)
    cells = [cell for p in plates for _, grid in p.iterations for r in grid for cell in r.cells]
    decimal_comma = decide_decimal_comma(cells, "\t")
    measurements = [_results_measurement(plate, label) for plate in plates if plate.iterations]
    return Export(
        measurements=tuple(measurements),
        header={},
        read_time_text=None,
        read_time_line=None,
        decimal_comma=decimal_comma,
        layout=LAYOUT_RESULTS,
    )


def _results_measurement(plate: _Plate, label: str) -> Measurement:
    readings: list[Reading] = []
    shape: tuple[int, int] | None = None
    for number, grid in plate.iterations:
        rows_n = len(grid)
        if rows_n not in c.COLUMNS_FOR_ROWS or (shape is not None and shape[0] != rows_n):
            raise InputFileError(c.GRID_ROWS.format(found=rows_n), line=grid[-1].number)
        columns_n = c.COLUMNS_FOR_ROWS[rows_n]
        shape = (rows_n, columns_n)
        for r, row in enumerate(grid):
            cells = row.cells[1:]
            for stray, cell in enumerate(cells[columns_n:], start=columns_n + 1):
                if cell.strip():
                    msg = c.GRID_EXTRA_CELLS.format(
                        row=c.ROW_LETTERS[r], column=stray, rows=rows_n, columns=columns_n
                    )
                    raise InputFileError(msg, line=row.number)
            for column in range(1, columns_n + 1):
                raw = cells[column - 1] if column <= len(cells) else ""
                readings.append(Reading(row.number, well_label(r, column), raw, max(number, 1)))
    assert shape is not None  # the plate has at least one grid
    iterations = [number for number, _ in plate.iterations]
    plate_line = {"plate_line": f"Plate:{plate.number} - {plate.rest}".strip(" -")}
    return Measurement(
        label=label,
        wavelength_text=plate.wavelength,
        derived=False,
        readings=tuple(readings),
        rows=shape[0],
        columns=shape[1],
        plate_key=plate.number,
        plate_id=None,
        kinetic=iterations[0] > 0,
        extra=plate_line,
    )


# --- workbook (Multiskan Sky) ---------------------------------------------------------------------


def _sheet_error(sheet: Sheet, message: str, line: int | None = None) -> InputFileError:
    return InputFileError(c.SHEET_PREFIX.format(sheet=sheet.name) + message, line=line)


def _key_values(sheet: Sheet) -> tuple[dict[str, str], dict[str, int]]:
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    for row in sheet.rows:
        cells = [cell.strip() for cell in row.cells if cell.strip()]
        if len(cells) >= 2:
            key = cells[0].removesuffix(":").strip()
            if key not in values:
                values[key] = cells[1]
                lines[key] = row.number
    return values, lines


def read_workbook_export(sheets: Sequence[Sheet]) -> Export:
    header: dict[str, str] = {}
    header_lines: dict[str, int] = {}
    start: tuple[str, int] | None = None
    raw_sheets: list[Sheet] = []
    for sheet in sheets:
        if sheet.name.strip() == c.GENERAL_SHEET:
            header, header_lines = _key_values(sheet)
        elif sheet.name.strip() == c.RUN_LOG_SHEET:
            for row in sheet.rows:
                if row.first.casefold() == c.WB_RUN_LOG_START.casefold() and row.cell(1):
                    start = (row.cell(1), row.number)
                    break
        elif sheet.name.strip().startswith(c.RAW_SHEET_PREFIX):
            raw_sheets.append(sheet)
    tables = [(sheet, *_read_raw_sheet(sheet)) for sheet in raw_sheets]
    tables = [table for table in tables if table[2]]
    if not tables:
        raise InputFileError(c.NO_RAW_SHEET)
    cells = [r.raw for _, _, records in tables for r in records]
    cells += [r.time for _, _, records in tables for r in records]
    decimal_comma = decide_decimal_comma(cells, "\t")
    all_wells = [(r.row, r.column) for _, _, records in tables for r in records]
    rows_n, columns_n = plate_shape(header.get(c.WB_KEY_PLATE_TEMPLATE), all_wells)
    measurements: list[Measurement] = []
    for sheet, label, records in tables:
        for (_, wavelength), readings in _readings(records, decimal_comma).items():
            measurements.append(
                Measurement(
                    label=label,
                    wavelength_text=wavelength or None,
                    derived=False,
                    readings=tuple(readings),
                    rows=rows_n,
                    columns=columns_n,
                    plate_key="",
                    extra={"sheet": sheet.name},
                )
            )
    if start is not None:
        read_time, read_line = start
    else:
        read_time = header.get(c.WB_KEY_EXECUTION_TIME, "")
        read_line = header_lines.get(c.WB_KEY_EXECUTION_TIME, 0)
    return Export(
        measurements=tuple(measurements),
        header=header,
        read_time_text=read_time or None,
        read_time_line=read_line or None,
        decimal_comma=decimal_comma,
        layout=LAYOUT_WORKBOOK,
    )


def _read_raw_sheet(sheet: Sheet) -> tuple[str, list[_Record]]:
    """The value column's header and the rows of one raw-data sheet."""
    for position, row in enumerate(sheet.rows):
        if row.first.casefold() != c.WB_WELL:
            continue
        names = [cell.strip() for cell in row.cells]
        wavelength = next((n for n, h in enumerate(names) if c.WB_WAVELENGTH in h.casefold()), None)
        time = next((n for n, h in enumerate(names) if c.WB_TIME in h.casefold()), None)
        value = next((n for n, h in enumerate(names) if h and n not in (0, wavelength, time)), None)
        if value is None:
            raise _sheet_error(sheet, c.NO_RAW_HEADER, row.number)
        return names[value], _raw_records(sheet, position + 1, wavelength, value, time)
    raise _sheet_error(sheet, c.NO_RAW_HEADER)


def _raw_records(
    sheet: Sheet, start: int, wavelength: int | None, value: int, time: int | None
) -> list[_Record]:
    records: list[_Record] = []
    for row in sheet.rows[start:]:
        if row.is_blank:
            break
        position = parse_well(row.first)
        if position is None:
            raise _sheet_error(sheet, c.BAD_WELL.format(found=row.first), row.number)
        records.append(
            _Record(
                line=row.number,
                plate="",
                well=well_label(*position),
                row=position[0],
                column=position[1],
                raw=row.cell(value),
                time=row.cell(time) if time is not None else "",
                wavelength=_wavelength_text(row.cell(wavelength)) if wavelength is not None else "",
                read="",
            )
        )
    return records


def _wavelength_text(text: str) -> str:
    """``340``, ``340.0`` → ``340``; anything else as written."""
    number = _number(text, decimal_comma=False)
    if number is not None and number.is_integer():
        return str(int(number))
    return text
