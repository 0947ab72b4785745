"""Gen5 text → plate blocks: header keys, procedure lines and the titled grids.

The reader knows the shape of the export and checks it (column header, row
letters, cells per row); it does not turn cells into numbers. Every error it
raises names the line; the parser adds the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from saa_lab.errors import InputFileError

from . import constants as c

__all__ = [
    "Grid",
    "GridRow",
    "Line",
    "PlateBlock",
    "check_endpoint",
    "read_plates",
    "split_lines",
]

_LINE_BREAK = re.compile(r"\r\n|\n|\r")
_ROW_LETTER = re.compile(r"[A-Z]")


@dataclass(frozen=True)
class Line:
    """One line of the export, split at tabs; ``number`` counts from 1."""

    number: int
    cells: tuple[str, ...]

    @staticmethod
    def create(number: int, text: str) -> Line:
        return Line(number, tuple(text.split("\t")))

    @property
    def first(self) -> str:
        return self.cells[0].strip()

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


def split_lines(text: str) -> list[Line]:
    """Split on CRLF, LF or a bare CR (all three occur, sometimes in one file)."""
    text = text.removeprefix("\ufeff")
    return [Line.create(n, part) for n, part in enumerate(_LINE_BREAK.split(text), start=1)]


@dataclass(frozen=True)
class GridRow:
    """One grid line: plate row ``row``, its values, and the read label if written."""

    line: int
    row: str
    values: tuple[str, ...]
    label: str | None
    continuation: bool


@dataclass(frozen=True)
class Grid:
    """A column header and the rows under it, with the section title above it."""

    title: str | None
    header_line: int
    columns: int
    rows: tuple[GridRow, ...]

    @property
    def row_count(self) -> int:
        return len({row.row for row in self.rows})


@dataclass(frozen=True)
class PlateBlock:
    """Everything from one ``Software Version`` line to the next."""

    start_line: int
    header: Mapping[str, str]
    procedure: tuple[Line, ...]
    grids: tuple[Grid, ...]
    extras: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "header", MappingProxyType(dict(self.header)))
        object.__setattr__(self, "extras", MappingProxyType(dict(self.extras)))

    @property
    def name(self) -> str:
        return self.header.get("Plate Number") or f"the plate starting at line {self.start_line}"


def check_endpoint(lines: Sequence[Line]) -> None:
    """Refuse kinetic and spectrum exports up front, naming the line that shows it."""
    for line in lines:
        first = line.first
        if any(first.startswith(marker) for marker in c.KINETIC_MARKERS):
            msg = c.KINETIC_NOT_SUPPORTED.format(marker=first)
            raise InputFileError(msg, line=line.number)
        cells = line.filled
        if c.FIRST_WELL in cells[1:] and first == c.KINETIC_TIME_COLUMN:
            msg = c.KINETIC_NOT_SUPPORTED.format(marker=" ".join(cells[:3]))
            raise InputFileError(msg, line=line.number)
        if c.FIRST_WELL in cells[1:] and first == c.SPECTRUM_COLUMN:
            raise InputFileError(c.SPECTRUM_NOT_SUPPORTED, line=line.number)


def read_plates(lines: Sequence[Line]) -> list[PlateBlock]:
    """One block per ``Software Version`` header, in file order."""
    check_endpoint(lines)
    starts = [i for i, line in enumerate(lines) if line.first == c.SOFTWARE_VERSION]
    if not starts:
        raise InputFileError(c.NO_HEADER)
    ends = [*starts[1:], len(lines)]
    return [_read_block(lines[start:end]) for start, end in zip(starts, ends, strict=True)]


def _read_block(lines: Sequence[Line]) -> PlateBlock:
    header: dict[str, str] = {}
    procedure: list[Line] = []
    extras: dict[str, str] = {}
    grids: list[Grid] = []
    state = "header"
    title: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.is_blank:
            if state == "procedure" and procedure:
                state = "sections"
            i += 1
            continue
        if _is_grid_header(line):
            if state == "procedure" and procedure and len(procedure[-1].filled) == 1:
                # No blank line between the procedure and the section title.
                title = procedure.pop().filled[0]
            state = "sections"
            grid, i = _read_grid(lines, i, title)
            grids.append(grid)
            title = None
            continue
        if state == "header" and line.first == c.PROCEDURE_DETAILS:
            state = "procedure"
        elif state == "header" and len(line.cells) > 1:
            key = line.first.removesuffix(":").strip()
            if key and key not in header:
                header[key] = line.filled[1] if len(line.filled) > 1 else ""
        elif state == "procedure":
            procedure.append(line)
        else:
            state = "sections"
            filled = line.filled
            if filled[0] == c.ACTUAL_TEMPERATURE:
                if len(filled) > 1:
                    extras.setdefault(c.META_ACTUAL_TEMPERATURE, filled[1])
            elif len(filled) == 1:
                title = filled[0]
            else:
                # A table that is not a plate grid (statistics, curve fits): not a title.
                title = None
        i += 1
    return PlateBlock(
        start_line=lines[0].number,
        header=header,
        procedure=tuple(procedure),
        grids=tuple(grids),
        extras=extras,
    )


def _is_grid_header(line: Line) -> bool:
    """``<TAB>1<TAB>2…``: an empty first cell, then numbers starting at 1."""
    filled = line.filled
    return len(filled) >= 2 and not filled[0] and filled[1] == "1"


def _column_count(line: Line) -> int:
    numbers = line.filled[1:]
    if any(cell != str(n) for n, cell in enumerate(numbers, start=1)):
        found = " ".join(numbers)
        raise InputFileError(c.BAD_COLUMN_HEADER.format(found=found), line=line.number)
    columns = len(numbers)
    if columns not in c.ROWS_FOR_COLUMNS:
        raise InputFileError(c.UNSUPPORTED_COLUMNS.format(columns=columns), line=line.number)
    return columns


def _read_grid(lines: Sequence[Line], start: int, title: str | None) -> tuple[Grid, int]:
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


def _read_row(line: Line, columns: int, letters: list[str]) -> GridRow:
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
