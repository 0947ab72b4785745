"""Delimited text → a long table: the lines before it, its header and one row per well.

``locate`` finds the header without raising (``sniff`` uses it on a file head);
``read_table`` then reads and checks the well rows, naming the line of any
problem.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from saa_lab.errors import InputFileError

from ..common import parse_well, wavelength_in
from ..table import Row
from . import constants as c

__all__ = [
    "Header",
    "LongTable",
    "WellRow",
    "count_well_rows",
    "is_derived_header",
    "locate",
    "parse_well",
    "read_table",
    "wavelength_of_header",
]

_WAVELENGTH_HEADER = re.compile(
    r"^(?:(?:abs(?:orbance)?|od|a|optical density|value|raw|raw data)\s*[-_@:]?\s*)?"
    r"[(\[]?\s*(\d{3,4}(?:\.\d+)?)\s*(?:nm)?\s*[)\]]?$"
)
_VALUE_PREFIX = re.compile(
    r"^(?:value|absorbance|abs|od|signal|rfu|rlu|fluorescence|luminescence|concentration|conc)"
    r"(?:\s|[(\[@:_-])"
)
_KINETIC = re.compile(r"^(?:time|repeat|cycle|reading|kinetic)\b|^read\.")
_BRACKETED = re.compile(r"^\[.+\]$")


def _name(text: str) -> str:
    return " ".join(text.split()).casefold()


def wavelength_of_header(name: str) -> float | None:
    return wavelength_in(_name(name), (_WAVELENGTH_HEADER,))


def _is_value_header(name: str) -> bool:
    text = _name(name)
    return bool(
        text in c.VALUE_HEADERS
        or _BRACKETED.match(text)
        or _VALUE_PREFIX.match(text)
        or wavelength_of_header(text) is not None
    )


def is_derived_header(name: str) -> bool:
    text = _name(name)
    return bool(_BRACKETED.match(text)) or any(word in text for word in c.DERIVED_WORDS)


@dataclass(frozen=True)
class Header:
    line: int
    names: tuple[str, ...]
    well_candidates: tuple[int, ...]
    value_columns: tuple[int, ...]

    @property
    def needed(self) -> int:
        """Cells a well row must have to reach every value column."""
        return max(*self.value_columns, *self.well_candidates) + 1


@dataclass(frozen=True)
class WellRow:
    line: int
    well: str
    row: int
    column: int
    cells: tuple[str, ...]


@dataclass(frozen=True)
class LongTable:
    preamble: tuple[Row, ...]
    header: Header
    well_column: int
    rows: tuple[WellRow, ...]
    end_index: int


def _header(row: Row) -> Header | None:
    names = tuple(cell.strip() for cell in row.cells)
    filled = [name for name in names if name]
    if len({_name(n) for n in filled}) != len(filled):
        return None
    if any(_KINETIC.match(_name(name)) for name in filled):
        return None
    wells = [n for pref in c.WELL_HEADERS for n, name in enumerate(names) if _name(name) == pref]
    values = tuple(
        n for n, name in enumerate(names) if name and n not in wells and _is_value_header(name)
    )
    if not wells or not values:
        return None
    return Header(row.number, names, tuple(wells), values)


def locate(rows: Sequence[Row]) -> tuple[int, Header, int] | None:
    """(index of the header row, header, well column) or None when there is no long table.

    The header must come within the first non-blank lines, after titles and short
    ``key, value`` lines only; its well column is the first candidate (Well before
    Well ID) whose cell in the next line is a well name.
    """
    seen = 0
    for index, row in enumerate(rows):
        filled = [cell for cell in row.cells if cell.strip()]
        if not filled:
            continue
        seen += 1
        if seen > c.HEADER_WITHIN:
            return None
        header = _header(row)
        if header is not None:
            following = next((r for r in rows[index + 1 :] if not r.is_blank), None)
            for column in header.well_candidates:
                if following is not None and parse_well(following.cell(column)) is not None:
                    return index, header, column
            return None
        if len(filled) > c.MAX_PREAMBLE_CELLS:
            return None
    return None


def count_well_rows(rows: Sequence[Row], start: int, column: int) -> int:
    """How many lines from ``start`` on are distinct well rows (sniff's test; never raises)."""
    seen: set[tuple[int, int]] = set()
    for row in rows[start:]:
        if row.is_blank:
            break
        position = parse_well(row.cell(column))
        if position is None or position in seen:
            break
        seen.add(position)
    return len(seen)


def read_table(rows: Sequence[Row]) -> LongTable:
    """The long table of a whole file, checked; InputFileError (with the line) otherwise."""
    found = locate(rows)
    if found is None:
        raise InputFileError(c.NO_TABLE)
    index, header, column = found
    column_name = header.names[column]
    well_rows: list[WellRow] = []
    first_line: dict[str, int] = {}
    i = index + 1
    while i < len(rows) and rows[i].is_blank:
        i += 1
    while i < len(rows) and not rows[i].is_blank:
        row = rows[i]
        cells = tuple(cell.strip() for cell in row.cells)
        if len(cells) < header.needed:
            msg = c.SHORT_ROW.format(found=len(cells), expected=header.needed, header=header.line)
            raise InputFileError(msg, line=row.number)
        position = parse_well(cells[column])
        if position is None:
            msg = c.BAD_WELL.format(found=cells[column], column=column_name)
            raise InputFileError(msg, line=row.number)
        well = f"{chr(ord('A') + position[0])}{position[1]}"
        if well in first_line:
            msg = c.DUPLICATE_WELL.format(well=well, first=first_line[well])
            raise InputFileError(msg, line=row.number, well=well)
        first_line[well] = row.number
        well_rows.append(WellRow(row.number, well, position[0], position[1], cells))
        i += 1
    _check_rest(rows, i, header, column)
    return LongTable(
        preamble=tuple(rows[:index]),
        header=header,
        well_column=column,
        rows=tuple(well_rows),
        end_index=i,
    )


def _check_rest(rows: Sequence[Row], start: int, header: Header, column: int) -> None:
    """Nothing after the table may be a second table or more well lines of this one."""
    end_line = rows[start].number if start < len(rows) else None
    for row in rows[start:]:
        if row.is_blank:
            continue
        other = _header(row)
        if other is not None and any(
            _name(header.names[n]) == _name(row.cell(n)) for n in header.value_columns
        ):
            raise InputFileError(c.SECOND_TABLE.format(first=header.line), line=row.number)
        if (
            len(row.cells) >= header.needed
            and parse_well(row.cell(column)) is not None
            and all(row.cell(n) for n in header.value_columns)
        ):
            raise InputFileError(c.TABLE_CONTINUES.format(end=end_line), line=row.number)
