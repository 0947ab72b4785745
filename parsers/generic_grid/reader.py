"""Delimited text → grid blocks and the other (metadata) lines.

Reading never raises: it records what it finds (column headers, rows with or
without a row letter, other lines) so that ``sniff`` can use it on a file head.
``check_grid`` then enforces the one-plate shape (2×3 … 16×24), naming the line.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass

from saa_lab.domain import NoValueReason
from saa_lab.errors import InputFileError

from ..base import parse_cell
from . import constants as c

__all__ = ["CsvLine", "GridBlock", "GridRow", "check_grid", "read_blocks", "split_lines"]

_LINE_BREAK = re.compile(r"\r\n|\n|\r")
_ROW_LETTER = re.compile(r"[A-Z]")
_COLUMN_NUMBER = re.compile(r"0*[1-9]\d*")


@dataclass(frozen=True)
class CsvLine:
    """One line split at the delimiter (quotes removed); ``number`` counts from 1."""

    number: int
    cells: tuple[str, ...]

    @staticmethod
    def create(number: int, text: str, delimiter: str) -> CsvLine:
        if delimiter == "\t":
            cells = text.split("\t")
        else:
            cells = next(csv.reader([text], delimiter=delimiter), [])
        return CsvLine(number, tuple(cell.strip() for cell in cells))

    @property
    def filled(self) -> tuple[str, ...]:
        """The cells without the empty ones at the end."""
        cells = list(self.cells)
        while cells and not cells[-1]:
            cells.pop()
        return tuple(cells)

    @property
    def is_blank(self) -> bool:
        return not self.filled


def split_lines(text: str, delimiter: str) -> list[CsvLine]:
    text = text.removeprefix("\ufeff")
    parts = _LINE_BREAK.split(text)
    return [CsvLine.create(n, part, delimiter) for n, part in enumerate(parts, start=1)]


@dataclass(frozen=True)
class GridRow:
    """A grid line: its row letter if written, and the cells after it."""

    line: int
    letter: str | None
    cells: tuple[str, ...]

    @property
    def filled_count(self) -> int:
        """Cells up to the last non-empty one."""
        filled = list(self.cells)
        while filled and not filled[-1]:
            filled.pop()
        return len(filled)

    def value_count(self, columns: int) -> int:
        """How many values the row gives for a grid of ``columns`` (empty cells at the end
        count as empty wells up to the grid's width, and as padding beyond it)."""
        return max(self.filled_count, min(len(self.cells), columns))

    def values(self, columns: int) -> tuple[str, ...]:
        cells = self.cells[:columns]
        return cells + ("",) * (columns - len(cells))


@dataclass(frozen=True)
class GridBlock:
    """Consecutive grid rows, with the column header line above them if there is one."""

    header_line: int | None
    header_columns: int | None
    rows: tuple[GridRow, ...]
    has_values: bool

    @property
    def first_line(self) -> int:
        return self.header_line if self.header_line is not None else self.rows[0].line

    @property
    def labelled(self) -> bool:
        return bool(self.rows) and self.rows[0].letter is not None

    def columns(self) -> int:
        """The header's column count, else the widest row."""
        if self.header_columns is not None:
            return self.header_columns
        return max((row.filled_count for row in self.rows), default=0)

    def is_plate(self) -> bool:
        """A whole plate: rows A, B, … (or unlabelled) of the right number and width."""
        columns = self.columns()
        expected = c.ROWS_FOR_COLUMNS.get(columns)
        if expected is None or len(self.rows) != expected:
            return False
        if not self.labelled and self.header_columns is None and columns < c.MIN_UNLABELLED_CELLS:
            return False
        for index, row in enumerate(self.rows):
            if row.value_count(columns) != columns:
                return False
            if row.letter is not None and row.letter != c.ROW_LETTERS[index]:
                return False
            if (row.letter is None) == self.labelled:
                return False
        return True


def _is_value(cell: str, *, decimal_comma: bool) -> bool:
    return parse_cell(cell, decimal_comma=decimal_comma).reason != NoValueReason.NON_NUMERIC


def _has_reading(cells: Sequence[str], *, decimal_comma: bool) -> bool:
    """A number or an instrument token (not empty, not free text)."""
    for cell in cells:
        reason = parse_cell(cell, decimal_comma=decimal_comma).reason
        if reason not in (NoValueReason.EMPTY, NoValueReason.NON_NUMERIC):
            return True
    return False


def header_columns(line: CsvLine) -> int | None:
    """N when the line is a column header ``[corner,] 1, 2, …, N`` (N ≥ 3), else None."""
    cells = list(line.filled)
    while cells and cells[0].casefold() in c.CORNER_CELLS:
        cells.pop(0)
    if len(cells) < c.MIN_HEADER_COLUMNS:
        return None
    for n, cell in enumerate(cells, start=1):
        if not _COLUMN_NUMBER.fullmatch(cell) or int(cell) != n:
            return None
    return len(cells)


def grid_row(
    line: CsvLine, delimiter: str, *, decimal_comma: bool, header: int | None = None
) -> GridRow | None:
    """The line as a grid row (row letter then cells, or cells of values only), or None.

    ``header`` is the column count of the column header above, if any: under one, rows
    without a letter need only that many cells.
    """
    cells = line.cells
    if delimiter != "\t" and any("\t" in cell for cell in cells):
        return None
    start = next((i for i, cell in enumerate(cells) if cell), None)
    if start is None:
        return None
    first = cells[start]
    if _ROW_LETTER.fullmatch(first) and len(cells) - start > 2:
        return GridRow(line.number, first, cells[start + 1 :])
    filled = line.filled
    minimum = c.MIN_UNLABELLED_CELLS if header is None else min(header, c.MIN_UNLABELLED_CELLS)
    if len(filled) < minimum:
        return None
    if all(_is_value(cell, decimal_comma=decimal_comma) for cell in filled) and _has_reading(
        filled, decimal_comma=decimal_comma
    ):
        return GridRow(line.number, None, cells)
    return None


def read_blocks(
    lines: Sequence[CsvLine], delimiter: str, *, decimal_comma: bool
) -> tuple[list[GridBlock], list[CsvLine]]:
    """Group grid rows (and their column header) into blocks; other lines are returned too."""
    blocks: list[GridBlock] = []
    others: list[CsvLine] = []
    header: CsvLine | None = None
    columns: int | None = None
    rows: list[GridRow] = []

    def close() -> None:
        nonlocal header, columns, rows
        if header is not None or rows:
            width = columns or max((row.filled_count for row in rows), default=0)
            cells = [cell for row in rows for cell in row.values(width)]
            blocks.append(
                GridBlock(
                    header_line=header.number if header is not None else None,
                    header_columns=columns,
                    rows=tuple(rows),
                    has_values=_has_reading(cells, decimal_comma=decimal_comma),
                )
            )
        header, columns, rows = None, None, []

    for line in lines:
        found = header_columns(line)
        if found is not None:
            close()
            header, columns = line, found
            continue
        row = grid_row(line, delimiter, decimal_comma=decimal_comma, header=columns)
        if row is not None:
            rows.append(row)
            continue
        close()
        if not line.is_blank:
            others.append(line)
    close()
    return blocks, others


def check_grid(blocks: Sequence[GridBlock]) -> tuple[GridBlock, int]:
    """The one block of values, checked to be a whole plate; and its column count.

    Blocks of text only (a sample layout printed beside the values) are not
    readings and are left out. Raises InputFileError naming the line otherwise.
    """
    for block in blocks:
        if block.header_columns is not None and block.header_columns not in c.ROWS_FOR_COLUMNS:
            msg = c.HEADER_COLUMNS.format(found=block.header_columns)
            raise InputFileError(msg, line=block.header_line)
        if block.header_line is not None and not block.rows:
            raise InputFileError(c.HEADER_WITHOUT_ROWS, line=block.header_line)
    value_blocks = [block for block in blocks if block.has_values]
    if not value_blocks:
        raise InputFileError(c.NO_GRID)
    if len(value_blocks) > 1:
        second = value_blocks[1]
        msg = c.SECOND_GRID.format(first=value_blocks[0].first_line)
        raise InputFileError(msg, line=second.first_line)
    block = value_blocks[0]
    columns = _check_rows(block)
    return block, columns


def _check_rows(block: GridBlock) -> int:
    rows = block.rows
    labelled = block.labelled
    for row in rows:
        if (row.letter is not None) != labelled:
            raise InputFileError(c.MIXED_ROW_LABELS, line=row.line)
    columns = block.columns()
    if columns not in c.ROWS_FOR_COLUMNS or (
        not labelled and block.header_columns is None and columns < c.MIN_UNLABELLED_CELLS
    ):
        raise InputFileError(c.GRID_COLUMNS.format(found=columns), line=rows[0].line)
    expected_rows = c.ROWS_FOR_COLUMNS[columns]
    for index, row in enumerate(rows):
        if index >= expected_rows:
            msg = c.ROW_COUNT.format(found=len(rows), columns=columns, expected=expected_rows)
            raise InputFileError(msg, line=row.line)
        expected = c.ROW_LETTERS[index]
        if row.letter is not None and row.letter != expected:
            msg = c.ROW_ORDER.format(found=row.letter, expected=expected)
            raise InputFileError(msg, line=row.line)
        found = row.value_count(columns)
        if found != columns:
            msg = c.ROW_VALUES.format(row=expected, found=found, columns=columns)
            raise InputFileError(msg, line=row.line)
    if len(rows) != expected_rows:
        msg = c.ROW_COUNT.format(found=len(rows), columns=columns, expected=expected_rows)
        raise InputFileError(msg, line=rows[-1].line)
    return columns
