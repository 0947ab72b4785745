"""SoftMax Pro text rows → blocks → plate sections, group tables and the footer.

The reader knows the export's shape and checks it: the ``##BLOCKS=`` count,
every block's ``~End``, the ``Plate:`` header, the column header, the rows of
each plate grid (PlateFormat: one grid per time point, wavelengths side by side)
or the lines of each time point (TimeFormat: one line per time point, wells as
columns). It keeps cells as text; the parser turns them into values. Every
error names the line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from saa_lab.errors import InputFileError
from saa_lab.wells import normalize_well

from ..table import Row
from . import constants as c
from .structure import (
    Export,
    Footer,
    GroupTable,
    PlateHeader,
    PlateSection,
    ReducedGrid,
    TimePoint,
    WavelengthData,
    well_name,
)

__all__ = ["Block", "parse_time", "read_export", "split_blocks"]

_TIME = re.compile(r"^(\d+):(\d{1,2})(?::(\d{1,2}(?:\.\d+)?))?$")
_TIME_SECONDS = re.compile(r"^(\d+):(\d{1,2}(?:\.\d+)?)$")
_INTEGER = re.compile(r"^\d+$")


@dataclass(frozen=True)
class Block:
    """The rows of one block: its first line (``Plate:…``) up to, not including, ``~End``."""

    kind: str
    rows: tuple[Row, ...]

    @property
    def line(self) -> int:
        return self.rows[0].number


def read_export(rows: Sequence[Row]) -> Export:
    """The plate sections and group tables of an export, in file order."""
    blocks_line, blocks, footer_rows = split_blocks(rows)
    sections: list[PlateSection | GroupTable] = []
    for block in blocks:
        if block.kind == c.PLATE_BLOCK:
            sections.append(read_plate(block.rows))
        elif block.kind == c.GROUP_BLOCK:
            sections.append(read_group(block.rows))
        # Note: blocks and unknown block kinds hold no readings.
    return Export(blocks_line=blocks_line, sections=tuple(sections), footer=_footer(footer_rows))


def split_blocks(rows: Sequence[Row]) -> tuple[int, list[Block], list[Row]]:
    """(line of ``##BLOCKS=``, the blocks, the rows after the last block)."""
    start = next((i for i, row in enumerate(rows) if not row.is_blank), None)
    if start is None or not rows[start].first.startswith(c.BLOCKS_MARKER):
        line = rows[start].number if start is not None else 1
        raise InputFileError(c.NO_BLOCKS_LINE, line=line)
    marker = rows[start]
    count_text = marker.first.removeprefix(c.BLOCKS_MARKER).strip()
    if not _INTEGER.match(count_text):
        raise InputFileError(c.BAD_BLOCKS_COUNT.format(found=count_text), line=marker.number)
    declared = int(count_text)
    blocks: list[Block] = []
    footer: list[Row] = []
    i = start + 1
    while i < len(rows):
        row = rows[i]
        if row.is_blank:
            i += 1
            continue
        if row.first.startswith(c.FOOTER_KEYS):
            footer = list(rows[i:])
            break
        kind = _block_kind(row)
        end = i + 1
        while end < len(rows) and rows[end].first != c.END_MARKER:
            if _is_plate_header(rows[end]):
                where = f"the next 'Plate:' line ({rows[end].number})"
                msg = c.MISSING_END.format(kind=kind, start=row.number, where=where)
                raise InputFileError(msg, line=row.number)
            end += 1
        if end == len(rows):
            msg = c.MISSING_END.format(kind=kind, start=row.number, where="the end of the file")
            raise InputFileError(msg, line=row.number)
        blocks.append(Block(kind, tuple(rows[i:end])))
        i = end + 1
    if c.STRICT_BLOCK_COUNT and len(blocks) != declared:
        msg = c.BLOCK_COUNT_MISMATCH.format(declared=declared, found=len(blocks))
        raise InputFileError(msg, line=marker.number)
    return marker.number, blocks, footer


def _block_kind(row: Row) -> str:
    first = row.first
    kind, colon, _ = first.partition(":")
    if not colon or not kind.strip() or " " in kind.strip():
        raise InputFileError(c.NOT_A_BLOCK.format(found=first[:60]), line=row.number)
    return kind.strip()


def _is_plate_header(row: Row) -> bool:
    return row.first == f"{c.PLATE_BLOCK}:" and len(row.cells) > c.FIELD_N_WELLS


def _footer(rows: Sequence[Row]) -> Footer:
    """Key/value pairs of the footer line(s): ``Original Filename: x; Date Last Saved: y``."""
    values: dict[str, str] = {}
    for row in rows:
        text = "\t".join(row.cells)
        found = sorted((text.find(key), key) for key in c.FOOTER_KEYS if key in text)
        for n, (position, key) in enumerate(found):
            end = found[n + 1][0] if n + 1 < len(found) else len(text)
            value = text[position + len(key) : end].strip().strip(";").strip()
            values.setdefault(key, value)
    return Footer(values)


# --- Plate: blocks --------------------------------------------------------------------------


def read_plate(rows: Sequence[Row]) -> PlateSection:
    header = PlateHeader.create(rows[0])
    body = rows[1:]
    if not body or not body[0].cell(1).casefold().startswith(c.TEMPERATURE_PREFIX):
        line = body[0].number if body else header.line
        raise InputFileError(c.NO_COLUMN_HEADER, line=line)
    if header.export_format == c.PLATE_FORMAT:
        return _PlateFormat(header, body).read()
    return _TimeFormat(header, body).read()


def parse_time(text: str) -> float | None:
    """Seconds of a SoftMax time: ``m:ss`` (PlateFormat, ``3:00`` = 180 s) or ``h:mm:ss``."""
    match = _TIME.match(text.strip())
    if match is None:
        seconds_only = _TIME_SECONDS.match(text.strip())
        if seconds_only is None:
            return None
        return int(seconds_only.group(1)) * 60 + float(seconds_only.group(2))
    first, second, third = match.groups()
    if third is None:
        return int(first) * 60 + float(second)
    return int(first) * 3600 + int(second) * 60 + float(third)


def _point_time(header: PlateHeader, row: Row, point: int) -> tuple[str, float | None]:
    if not header.is_kinetic:
        return "", None
    text = row.first
    if not text:
        raise InputFileError(c.MISSING_TIME.format(point=point + 1), line=row.number)
    seconds = parse_time(text)
    if seconds is None:
        raise InputFileError(c.BAD_TIME.format(found=text), line=row.number)
    return text, seconds


def _check_increasing(points: Sequence[TimePoint]) -> None:
    for before, after in pairwise(points):
        earlier, later = before.seconds, after.seconds
        if earlier is not None and later is not None and later <= earlier:
            msg = c.TIMES_NOT_INCREASING.format(found=after.time, previous=before.time)
            raise InputFileError(msg, line=after.line)


Columns = list[list[tuple[int, int]]]


def _column_groups(row: Row, header: PlateHeader) -> Columns:
    """(cell position, plate column) per group of column numbers; groups split at empty cells."""
    groups: Columns = []
    current: list[tuple[int, int]] = []
    for position in range(2, len(row.cells)):
        text = row.cells[position].strip()
        if not text:
            if current:
                groups.append(current)
                current = []
            continue
        if not _INTEGER.match(text):
            found = " ".join(row.filled[2:])
            raise InputFileError(c.BAD_COLUMN_HEADER.format(found=found[:80]), line=row.number)
        column = int(text)
        if not 1 <= column <= header.plate_columns or (current and column <= current[-1][1]):
            found = " ".join(row.filled[2:])
            raise InputFileError(c.BAD_COLUMN_HEADER.format(found=found[:80]), line=row.number)
        current.append((position, column))
    if current:
        groups.append(current)
    return groups


class _PlateFormat:
    """Grids of rows A, B, … per time point; wavelengths side by side, one empty cell apart."""

    def __init__(self, header: PlateHeader, body: Sequence[Row]) -> None:
        self.header = header
        self.body = body
        self.columns = body[0]
        self.groups = _column_groups(body[0], header)
        if not self.groups:
            found = " ".join(body[0].filled[2:])
            raise InputFileError(c.BAD_COLUMN_HEADER.format(found=found), line=body[0].number)
        declared = len(header.wavelengths)
        if len(self.groups) != declared:
            msg = c.COLUMN_GROUPS.format(found=len(self.groups), declared=declared)
            raise InputFileError(msg, line=body[0].number)

    def read(self) -> PlateSection:
        header, body = self.header, self.body
        per_wavelength: list[list[TimePoint]] = [[] for _ in self.groups]
        pos = 1
        for point in range(header.kinetic_points):
            if pos >= len(body) or self._is_reduced_header(body[pos]):
                line = body[pos].number if pos < len(body) else body[-1].number
                msg = c.TOO_FEW_POINTS.format(
                    what="the plate section", found=point, declared=header.kinetic_points
                )
                raise InputFileError(msg, line=line)
            start = body[pos]
            time, seconds = _point_time(header, start, point)
            end = self._boundary(pos + 1, self._is_reduced_header)
            lines, offset = _fit_rows(body[pos:end], header)
            grids = self._grids(lines, offset, full_rows=True)
            for wavelength, cells in enumerate(grids):
                per_wavelength[wavelength].append(
                    TimePoint(start.number, time, seconds, start.cell(1), cells)
                )
            pos = end
        reduced: list[ReducedGrid] = []
        while pos < len(body):
            row = body[pos]
            if row.is_blank:
                pos += 1
                continue
            if self._is_reduced_header(row):
                groups = _column_groups(row, header)
                end = self._boundary(pos + 1, self._is_reduced_header)
                lines = body[pos + 1 : end]
                if not any(not line.is_blank for line in lines):
                    raise InputFileError(c.REDUCED_WITHOUT_VALUES, line=row.number)
                fitted, offset = _fit_rows(lines, header)
                for cells in self._grids(fitted, offset, full_rows=False, groups=groups):
                    reduced.append(ReducedGrid(row.number, cells))
                pos = end
                continue
            if header.is_kinetic and row.first:
                msg = c.TOO_MANY_POINTS.format(declared=header.kinetic_points)
                raise InputFileError(msg, line=row.number)
            found = "\t".join(row.filled)[:60]
            raise InputFileError(c.UNEXPECTED_LINE.format(found=found), line=row.number)
        for points in per_wavelength:
            _check_increasing(points)
        return PlateSection(
            header=header,
            reads=tuple(WavelengthData(tuple(points)) for points in per_wavelength),
            reduced=tuple(reduced),
        )

    def _boundary(self, pos: int, stop: Callable[[Row], bool]) -> int:
        """The index of the next row that starts a time point or matches ``stop``."""
        body = self.body
        while pos < len(body) and not (body[pos].first or stop(body[pos])):
            pos += 1
        return pos

    def _is_reduced_header(self, row: Row) -> bool:
        """``<TAB><TAB>1<TAB>2…``: the raw header's column numbers after two empty cells.

        The first group must repeat the raw header's first group exactly, so a
        grid row of whole numbers (luminescence counts) is never taken for it.
        """
        if row.cell(0) or row.cell(1) or row.cell(2) != str(self.groups[0][0][1]):
            return False
        try:
            groups = _column_groups(row, self.header)
        except InputFileError:
            return False
        return bool(groups) and groups[0] == self.groups[0]

    def _grids(
        self,
        lines: Sequence[Row],
        offset: int,
        *,
        full_rows: bool,
        groups: Columns | None = None,
    ) -> list[dict[str, str]]:
        """Cells per wavelength group, by well; checks that values lie in the read area.

        With ``full_rows`` every row of the read area must hold a value (a raw
        grid whose rows moved up or down leaves one empty).
        """
        header = self.header
        groups = groups if groups is not None else self.groups
        known = {position for group in groups for position, _ in group}
        grids: list[dict[str, str]] = [{} for _ in groups]
        for index, line in enumerate(lines):
            row_index = offset + index
            for position in range(2, len(line.cells)):
                text = line.cells[position].strip()
                if text and position not in known:
                    msg = c.VALUE_OUTSIDE_HEADER.format(found=text[:30])
                    raise InputFileError(msg, line=line.number)
            in_area_values = 0
            for grid, group in zip(grids, groups, strict=True):
                for position, column in group:
                    raw = line.cells[position] if position < len(line.cells) else ""
                    grid[well_name(row_index, column)] = raw
                    if not raw.strip():
                        continue
                    if not header.in_area(row_index, column):
                        msg = c.VALUE_OUTSIDE_AREA.format(
                            well=well_name(row_index, column), area=header.read_area
                        )
                        raise InputFileError(msg, line=line.number)
                    in_area_values += 1
            in_rows = header.first_row - 1 <= row_index < header.first_row - 1 + header.rows
            if full_rows and in_rows and not in_area_values:
                msg = c.ROW_WITHOUT_VALUES.format(
                    row=c.ROW_LETTERS[row_index],
                    first=c.ROW_LETTERS[header.first_row - 1],
                    last=c.ROW_LETTERS[header.first_row + header.rows - 2],
                )
                raise InputFileError(msg, line=line.number)
        return grids


def _fit_rows(lines: Sequence[Row], header: PlateHeader) -> tuple[Sequence[Row], int]:
    """The grid's row lines and the index of its first plate row.

    A grid has a line for every plate row (unread rows as empty cells), or
    only the declared rows of a partial read; blank lines may follow it.
    """
    full, declared = header.plate_rows, header.rows

    def blank_after(count: int) -> bool:
        return len(lines) >= count and all(line.is_blank for line in lines[count:])

    if blank_after(full):
        return lines[:full], 0
    if declared < full and blank_after(declared):
        return lines[:declared], header.first_row - 1
    found = max((n + 1 for n, line in enumerate(lines) if not line.is_blank), default=0)
    msg = c.GRID_ROWS.format(
        start=lines[0].number, found=found, wells=header.wells, rows=full, declared=declared
    )
    raise InputFileError(msg, line=lines[0].number)


class _TimeFormat:
    """One line per time point with the wells as columns; wavelengths one after another."""

    def __init__(self, header: PlateHeader, body: Sequence[Row]) -> None:
        self.header = header
        self.body = body
        self.wells = self._well_columns(body[0])

    def _well_columns(self, row: Row) -> list[tuple[int, str]]:
        header = self.header
        wells: list[tuple[int, str]] = []
        seen: set[str] = set()
        for position in range(2, len(row.cells)):
            text = row.cells[position].strip()
            if not text:
                continue
            well = normalize_well(text, rows=header.plate_rows, cols=header.plate_columns)
            if well is None:
                msg = c.BAD_WELL_HEADER.format(found=text[:20], wells=header.wells)
                raise InputFileError(msg, line=row.number)
            if well in seen:
                raise InputFileError(c.DUPLICATE_WELL.format(well=well), line=row.number)
            seen.add(well)
            wells.append((position, well))
        if not wells:
            raise InputFileError(c.NO_COLUMN_HEADER, line=row.number)
        return wells

    def read(self) -> PlateSection:
        header, body = self.header, self.body
        reads: list[WavelengthData] = []
        pos = 1
        for wavelength in range(len(header.wavelengths)):
            while pos < len(body) and body[pos].is_blank:
                pos += 1
            points: list[TimePoint] = []
            for point in range(header.kinetic_points):
                if pos >= len(body) or body[pos].is_blank or self._is_reduced_header(body[pos]):
                    line = body[min(pos, len(body) - 1)].number
                    what = f"wavelength {wavelength + 1}"
                    msg = c.TOO_FEW_POINTS.format(
                        what=what, found=point, declared=header.kinetic_points
                    )
                    raise InputFileError(msg, line=line)
                row = body[pos]
                time, seconds = _point_time(header, row, point)
                points.append(TimePoint(row.number, time, seconds, row.cell(1), self._cells(row)))
                pos += 1
            _check_increasing(points)
            reads.append(WavelengthData(tuple(points)))
        reduced: list[ReducedGrid] = []
        while pos < len(body):
            row = body[pos]
            if row.is_blank:
                pos += 1
                continue
            if self._is_reduced_header(row):
                reduced_wells = self._well_columns(row)
                values = next((r for r in body[pos + 1 :] if not r.is_blank), None)
                if values is None or self._is_reduced_header(values):
                    raise InputFileError(c.REDUCED_WITHOUT_VALUES, line=row.number)
                cells = {
                    well: values.cells[p] if p < len(values.cells) else ""
                    for p, well in reduced_wells
                }
                reduced.append(ReducedGrid(row.number, cells))
                pos = body.index(values) + 1
                continue
            if header.is_kinetic and row.first:
                msg = c.TOO_MANY_POINTS.format(declared=header.kinetic_points)
                raise InputFileError(msg, line=row.number)
            found = "\t".join(row.filled)[:60]
            raise InputFileError(c.UNEXPECTED_LINE.format(found=found), line=row.number)
        return PlateSection(header=header, reads=tuple(reads), reduced=tuple(reduced))

    def _cells(self, row: Row) -> dict[str, str]:
        last = self.wells[-1][0]
        for position in range(last + 1, len(row.cells)):
            text = row.cells[position].strip()
            if text:
                msg = c.VALUE_OUTSIDE_HEADER.format(found=text[:30])
                raise InputFileError(msg, line=row.number)
        cells = {
            well: row.cells[position] if position < len(row.cells) else ""
            for position, well in self.wells
        }
        header = self.header
        for well, raw in cells.items():
            if raw.strip() and not header.in_area(ord(well[0]) - ord("A"), int(well[1:])):
                msg = c.VALUE_OUTSIDE_AREA.format(well=well, area=header.read_area)
                raise InputFileError(msg, line=row.number)
        return cells

    def _is_reduced_header(self, row: Row) -> bool:
        """``<TAB><TAB>A1<TAB>A2…``: well names after two empty cells."""
        if row.cell(0) or row.cell(1):
            return False
        header = self.header
        return (
            normalize_well(row.cell(2), rows=header.plate_rows, cols=header.plate_columns)
            is not None
        )


# --- Group: blocks --------------------------------------------------------------------------


def read_group(rows: Sequence[Row]) -> GroupTable:
    """A group table: ``Group: name`` (or ``Group:<TAB>name``), column names, rows to a blank."""
    first = rows[0]
    name = first.first.partition(":")[2].strip() or first.cell(1)
    body = rows[1:]
    if not body or body[0].is_blank:
        return GroupTable(first.number, name, (), ())
    columns = body[0].filled
    data: list[Row] = []
    i = 1
    while i < len(body) and not body[i].is_blank:
        data.append(body[i])
        i += 1
    formulas: dict[str, str] = {}
    while i < len(body):
        if body[i].first == c.GROUP_FORMULA_HEADER:
            names = body[i].filled
            if c.GROUP_FORMULA_NAME in names and c.GROUP_FORMULA in names:
                name_at, formula_at = (
                    names.index(c.GROUP_FORMULA_NAME),
                    names.index(c.GROUP_FORMULA),
                )
                i += 1
                while i < len(body) and not body[i].is_blank:
                    formulas.setdefault(body[i].cell(name_at), body[i].cell(formula_at))
                    i += 1
        i += 1
    return GroupTable(first.number, name, columns, tuple(data), formulas)
