"""Gen5 rows → plate blocks: header keys, procedure lines, titled grids and kinetic tables.

The same reader serves text exports (lines split at tabs) and workbooks (one sheet's rows,
cells rendered as text): Gen5 writes the same lines in both, except that in a workbook the
grids and tables sit one column to the right (row letters and 'Time' in column B). The
reader finds that shift from the first grid or table header and reads the data sections
through it. It checks the shape of every section (column header, row letters, cells per
row, well names) and does not turn cells into numbers. Every error it raises names the
line (the sheet row in a workbook); the parser adds the file and the sheet.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import Enum

from saa_lab.errors import InputFileError

from ..table import Row
from . import constants as c
from .structure import Grid, GridRow, KineticRow, KineticTable, PlateBlock

__all__ = ["has_header", "read_plates", "well_name"]

_ROW_LETTER = re.compile(r"[A-Z]")
_WELL = re.compile(r"^([A-P])0?([1-9]|1\d|2[0-4])$")
_GRID_NUMBER = re.compile(r"^(\d{1,3})(?:\.0+)?$")
# A kinetic row whose time and temperature lost the tab between them: ``12:14:4324.0``.
_JOINED_TIME = re.compile(r"^(\d+:[0-5]\d:[0-5]\d)([+-]?\d+(?:[.,]\d+)?)$")


class _Part(Enum):
    HEADER = "header"
    PROCEDURE = "procedure"
    SECTIONS = "sections"


class _Start(Enum):
    GRID = "grid"
    KINETIC = "kinetic"
    SPECTRUM = "spectrum"


def well_name(text: str) -> str | None:
    """``A1`` for ``A1``/``A01``, or None when the text is not a well of a ≤384-well plate."""
    match = _WELL.match(text.strip())
    return f"{match.group(1)}{match.group(2)}" if match else None


def has_header(rows: Sequence[Row]) -> bool:
    return any(row.first == c.SOFTWARE_VERSION for row in rows)


def read_plates(rows: Sequence[Row]) -> list[PlateBlock]:
    """One block per ``Software Version`` header, in order."""
    starts = [i for i, row in enumerate(rows) if row.first == c.SOFTWARE_VERSION]
    if not starts:
        raise InputFileError(c.NO_HEADER)
    shift = _data_shift(rows)
    views = [_shifted(row, shift) for row in rows]
    ends = [*starts[1:], len(rows)]
    return [
        _read_block(rows[start:end], views[start:end])
        for start, end in zip(starts, ends, strict=True)
    ]


def _grid_number(text: str) -> int | None:
    match = _GRID_NUMBER.match(text)
    return int(match.group(1)) if match else None


def _data_shift(rows: Sequence[Row]) -> int:
    """Empty leading cells before the data sections' first column (0 in text, 1 in xlsx)."""
    for row in rows:
        cells = row.filled
        k = next((i for i, cell in enumerate(cells) if cell), None)
        if k is None or len(cells) < k + 3:
            continue
        if k >= 1 and _grid_number(cells[k]) == 1 and _grid_number(cells[k + 1]) == 2:
            return k - 1
        if cells[k] == c.KINETIC_TIME_COLUMN and any(well_name(x) for x in cells[k + 1 : k + 3]):
            return k
    return 0


def _shifted(row: Row, shift: int) -> Row:
    if shift and len(row.cells) > shift and not any(cell.strip() for cell in row.cells[:shift]):
        return Row(row.number, row.cells[shift:])
    return row


def _section_start(view: Row) -> _Start | None:
    cells = view.filled
    if len(cells) >= 3 and not cells[0]:
        if _grid_number(cells[1]) == 1 and _grid_number(cells[2]) == 2:
            return _Start.GRID
        return None
    if len(cells) >= 2 and any(well_name(cell) for cell in cells[1:3]):
        if cells[0] == c.KINETIC_TIME_COLUMN:
            return _Start.KINETIC
        if cells[0] == c.SPECTRUM_COLUMN:
            return _Start.SPECTRUM
    return None


def _read_block(rows: Sequence[Row], views: Sequence[Row]) -> PlateBlock:
    header: dict[str, str] = {}
    procedure: list[Row] = []
    extras: dict[str, str] = {}
    grids: list[Grid] = []
    kinetics: list[KineticTable] = []
    part = _Part.HEADER
    title: str | None = None
    i = 0
    while i < len(rows):
        row, view = rows[i], views[i]
        if view.is_blank:
            if part is _Part.PROCEDURE and procedure:
                part = _Part.SECTIONS
            i += 1
            continue
        start = _section_start(view)
        if start is not None:
            if part is _Part.PROCEDURE and procedure and len(procedure[-1].filled) == 1:
                # No blank line between the procedure and the section title.
                title = procedure.pop().filled[0]
            part = _Part.SECTIONS
            if start is _Start.SPECTRUM:
                raise InputFileError(c.SPECTRUM_NOT_SUPPORTED, line=view.number)
            if start is _Start.GRID:
                grid, i = _read_grid(views, i, title)
                grids.append(grid)
            else:
                table, i = _read_kinetic(views, i, title)
                kinetics.append(table)
            title = None
            continue
        filled = view.filled
        if part is not _Part.SECTIONS and (
            filled[0] == c.ACTUAL_TEMPERATURE
            or (len(filled) == 1 and filled[0].casefold() in c.SECTION_TITLES)
        ):
            part = _Part.SECTIONS
        if part is _Part.HEADER:
            if row.first == c.PROCEDURE_DETAILS:
                part = _Part.PROCEDURE
            elif row.first:
                key = row.first.removesuffix(":").strip()
                cells = row.filled
                header.setdefault(key, cells[1] if len(cells) > 1 else "")
        elif part is _Part.PROCEDURE:
            procedure.append(row)
        elif filled[0] == c.ACTUAL_TEMPERATURE:
            if len(filled) > 1:
                extras.setdefault(c.META_ACTUAL_TEMPERATURE, filled[1])
        elif len(filled) == 1:
            title = filled[0]
        else:
            # A table that is not a plate grid (statistics, curve fits): not a title.
            title = None
        i += 1
    return PlateBlock(
        start_line=rows[0].number,
        header=header,
        procedure=tuple(procedure),
        grids=tuple(grids),
        kinetics=tuple(kinetics),
        extras=extras,
    )


# --- endpoint grids -------------------------------------------------------------------------


def _column_count(line: Row) -> int:
    numbers = line.filled[1:]
    if any(_grid_number(cell) != n for n, cell in enumerate(numbers, start=1)):
        found = " ".join(numbers)
        raise InputFileError(c.BAD_COLUMN_HEADER.format(found=found), line=line.number)
    columns = len(numbers)
    if columns not in c.ROWS_FOR_COLUMNS:
        raise InputFileError(c.UNSUPPORTED_COLUMNS.format(columns=columns), line=line.number)
    return columns


def _read_grid(lines: Sequence[Row], start: int, title: str | None) -> tuple[Grid, int]:
    """Read the grid whose column header is ``lines[start]``; returns it and the next index.

    A grid runs to the next blank line. Each line is a plate row (its letter)
    or a further read of the row above (empty letter, Gen5's stacked reads).
    """
    header = lines[start]
    columns = _column_count(header)
    rows: list[GridRow] = []
    letters: list[str] = []
    i = start + 1
    while i < len(lines) and not lines[i].is_blank:
        rows.append(_read_row(lines[i], columns, letters))
        i += 1
    if not rows:
        raise InputFileError(c.EMPTY_GRID, line=header.number)
    _check_labels(rows)
    expected = c.ROWS_FOR_COLUMNS[columns]
    if len(letters) != expected:
        msg = c.WRONG_ROW_COUNT.format(found=len(letters), columns=columns, expected=expected)
        raise InputFileError(msg, line=rows[-1].line)
    return Grid(title=title, header_line=header.number, columns=columns, rows=tuple(rows)), i


def _read_row(line: Row, columns: int, letters: list[str]) -> GridRow:
    first = line.first
    continuation = not first
    if continuation:
        if not letters:
            raise InputFileError(c.CONTINUATION_BEFORE_ROW, line=line.number)
        row = letters[-1]
    else:
        expected = c.ROW_LETTERS[len(letters)] if len(letters) < len(c.ROW_LETTERS) else "-"
        if not _ROW_LETTER.fullmatch(first) or first != expected:
            msg = c.BAD_ROW_LETTER.format(found=first, expected=expected)
            raise InputFileError(msg, line=line.number)
        letters.append(first)
        row = first
    cells = line.cells[1:]
    if len(cells) < columns:
        msg = c.RAGGED_ROW.format(row=row, found=len(cells), columns=columns)
        raise InputFileError(msg, line=line.number)
    rest = [cell.strip() for cell in cells[columns:]]
    while rest and not rest[-1]:
        rest.pop()
    if len(rest) > 1:
        msg = c.EXTRA_CELLS.format(row=row, found=len(rest), columns=columns)
        raise InputFileError(msg, line=line.number)
    label = rest[0] if rest and rest[0] else None
    if continuation and label is None:
        raise InputFileError(c.CONTINUATION_WITHOUT_LABEL.format(row=row), line=line.number)
    return GridRow(
        line=line.number,
        row=row,
        values=tuple(cells[:columns]),
        label=label,
        continuation=continuation,
    )


def _check_labels(rows: Sequence[GridRow]) -> None:
    """Either every row carries a read label or none does (then the title names the read)."""
    if not any(row.label for row in rows):
        return
    for row in rows:
        if row.label is None:
            raise InputFileError(c.MISSING_LABEL.format(row=row.row), line=row.line)


# --- kinetic tables -------------------------------------------------------------------------


def _filled_length(cells: Sequence[str]) -> int:
    """How many cells there are up to the last non-empty one."""
    return next((n for n in range(len(cells), 0, -1) if cells[n - 1].strip()), 0)


def _read_kinetic(lines: Sequence[Row], start: int, title: str | None) -> tuple[KineticTable, int]:
    """Read ``Time<TAB>[T° 600<TAB>]A1<TAB>A2…`` and its rows, up to the next blank line."""
    header = lines[start]
    cells = header.filled
    first_well = 1
    temperature: str | None = None
    if well_name(cells[1]) is None:
        temperature, first_well = cells[1], 2
    wells: list[str] = []
    for column, cell in enumerate(cells[first_well:], start=first_well + 1):
        well = well_name(cell)
        if well is None:
            msg = c.KINETIC_BAD_COLUMN.format(column=column, found=cell)
            raise InputFileError(msg, line=header.number)
        if well in wells:
            raise InputFileError(c.KINETIC_DUPLICATE_WELL.format(well=well), line=header.number)
        wells.append(well)
    if not wells:
        raise InputFileError(c.KINETIC_NO_WELLS, line=header.number)
    width = first_well + len(wells)
    rows: list[KineticRow] = []
    repaired: list[int] = []
    i = start + 1
    while i < len(lines) and not lines[i].is_blank:
        line = lines[i]
        row_cells = list(line.cells)
        joined = _JOINED_TIME.match(row_cells[0].strip()) if row_cells else None
        if temperature is not None and joined and len(line.filled) == width - 1:
            row_cells[:1] = [joined.group(1), joined.group(2)]
            repaired.append(line.number)
        filled = _filled_length(row_cells)
        if filled > width:
            found = filled - width
            msg = c.KINETIC_EXTRA_CELLS.format(found=found, wells=len(wells))
            raise InputFileError(msg, line=line.number)
        if len(row_cells) < width:
            msg = c.KINETIC_RAGGED_ROW.format(
                found=len(row_cells),
                expected=width,
                temperature="temperature, " if temperature is not None else "",
                wells=len(wells),
            )
            raise InputFileError(msg, line=line.number)
        rows.append(
            KineticRow(
                line=line.number,
                time=row_cells[0].strip(),
                temperature=row_cells[1].strip() if temperature is not None else None,
                values=tuple(row_cells[first_well:width]),
            )
        )
        i += 1
    padding = 0
    while rows and rows[-1].is_padding:
        rows.pop()
        padding += 1
    if not rows:
        raise InputFileError(c.KINETIC_NO_ROWS, line=header.number)
    table = KineticTable(
        title=title,
        header_line=header.number,
        wells=tuple(wells),
        temperature_header=temperature,
        rows=tuple(rows),
        padding_dropped=padding,
        repaired_lines=tuple(repaired),
    )
    return table, i
