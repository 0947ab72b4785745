"""EnVision / EnSpire CSV → reads, with the shape checked and lines named.

The export repeats, per plate × repeat × label, a ``Plate information`` block
(``Plate,Repeat,Barcode,…,Measurement date``), an optional ``Background
information`` block and one or more grids: titled (``Results for A450(1) -
channel 1 (A)``, ``Signal for Meas A - (RFU)``, ``Calculated results: Calc 1:
…``) with a ``,01,02,…`` header and row letters, or bare 8×12 / 16×24 blocks of
numbers. The plate information may come after its grids ('End of plate'). A
trailer (``Basic assay information`` onwards) describes the assay and the
instrument. Repeats of one plate and label become one kinetic read, timed by
their measurement dates. The reader does not turn cells into numbers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from saa_lab.domain import Meta, NoValueReason
from saa_lab.errors import InputFileError

from ..base import parse_cell
from ..table import Row
from . import constants as c
from .common import clean_value, given, parse_pe_datetime
from .structure import PeExport, PeRead

__all__ = ["looks_like_envision", "read_envision"]

_INFO_HEADER = re.compile(r"^Plate[,;\t]Repeat[,;\t]Barcode", re.M)
_BACKGROUND_HEADER = re.compile(r"^Plate[,;\t]Label[,;\t]Result[,;\t]Signal", re.M)
_INFO_TITLE = re.compile(r"^\W?Plate information\s*$", re.M)
_BACKGROUND_TITLE = re.compile(r"^\W?Background information\s*$", re.M)
_TRAILER_KEY = re.compile(r"^\s*(.+?)\s*:?\s*$")
_EXPORTED_WITH = re.compile(r"^Exported with\s+((\S+).*?)\s*$", re.I)


def looks_like_envision(head: str) -> bool:
    """'Plate information' + 'Plate,Repeat,Barcode,…', or the 'Background information' block.

    Exports that place the plate information at the end of each plate start
    with the background block (or a grid); their first 'Plate information' may
    lie beyond the head.
    """
    if _INFO_TITLE.search(head) and _INFO_HEADER.search(head):
        return True
    return bool(_BACKGROUND_TITLE.search(head) and _BACKGROUND_HEADER.search(head))


@dataclass(frozen=True)
class _Info:
    line: int
    values: dict[str, str]


@dataclass(frozen=True)
class _Grid:
    title: str | None
    line: int
    rows: int
    columns: int
    cells: dict[str, str]


@dataclass
class _Group:
    info: _Info
    grids: list[_Grid] = field(default_factory=list)


def _is_value(cell: str) -> bool:
    """A number or an instrument token (not empty, not free text)."""
    parsed = parse_cell(cell, decimal_comma=True)
    return parsed.value is not None or parsed.reason not in (
        NoValueReason.EMPTY,
        NoValueReason.NON_NUMERIC,
    )


def _grid_header(row: Row) -> int | None:
    """N for ',01,02,…,N' (or ',1,2,…'), else None."""
    filled = row.filled
    if len(filled) < 3 or filled[0] or filled[1] not in ("01", "1"):
        return None
    numbers = filled[1:]
    if any(cell.lstrip("0") != str(n) for n, cell in enumerate(numbers, start=1)):
        raise InputFileError(c.GRID_BAD_HEADER.format(found=" ".join(numbers)), line=row.number)
    if len(numbers) not in c.ROWS_FOR_COLUMNS:
        msg = c.GRID_UNSUPPORTED_COLUMNS.format(columns=len(numbers))
        raise InputFileError(msg, line=row.number)
    return len(numbers)


def _labelled_grid(rows: Sequence[Row], start: int, title: str | None) -> tuple[_Grid, int]:
    header = rows[start]
    columns = _grid_header(header)
    assert columns is not None
    max_rows = c.ROWS_FOR_COLUMNS[columns]
    letters = c.ROW_LETTERS[:max_rows]
    cells: dict[str, str] = {}
    previous = ""
    index = start + 1
    while index < len(rows) and not rows[index].is_blank:
        row = rows[index]
        letter = row.first
        if len(letter) != 1 or letter not in letters or (previous and letter <= previous):
            msg = c.GRID_BAD_ROW.format(found=letter, previous=previous or "-", columns=columns)
            raise InputFileError(msg, line=row.number)
        values = [cell.strip() for cell in row.cells[1:]]
        while len(values) > columns and not values[-1]:
            values.pop()
        if len(values) > columns:
            msg = c.GRID_LONG_ROW.format(row=letter, found=len(values), columns=columns)
            raise InputFileError(msg, line=row.number)
        for column, raw in enumerate(values, start=1):
            if raw:
                cells[f"{letter}{column}"] = row.cells[column]
        previous = letter
        index += 1
    if not previous:
        raise InputFileError(c.GRID_EMPTY, line=header.number)
    grid = _Grid(title=title, line=header.number, rows=max_rows, columns=columns, cells=cells)
    return grid, index


def _is_bare_row(row: Row) -> bool:
    filled = row.filled
    return len(filled) in c.ROWS_FOR_COLUMNS and all(_is_value(cell) for cell in filled)


def _bare_grid(rows: Sequence[Row], start: int, title: str | None) -> tuple[_Grid, int]:
    """Consecutive rows of numbers with no labels: 8 × 12 or 16 × 24."""
    index = start
    block: list[Row] = []
    while index < len(rows) and not rows[index].is_blank and _is_bare_row(rows[index]):
        block.append(rows[index])
        index += 1
    columns = len(block[0].filled)
    if any(len(row.filled) != columns for row in block) or (
        (len(block), columns) not in ((8, 12), (16, 24))
    ):
        msg = c.GRID_UNLABELLED_SHAPE.format(rows=len(block), columns=columns)
        raise InputFileError(msg, line=block[0].number)
    cells = {
        f"{c.ROW_LETTERS[r]}{col}": row.cells[col - 1]
        for r, row in enumerate(block)
        for col in range(1, columns + 1)
    }
    grid = _Grid(title=title, line=block[0].number, rows=len(block), columns=columns, cells=cells)
    return grid, index


def _table(rows: Sequence[Row], start: int) -> tuple[list[str], list[list[str]], int]:
    """A header line and the value lines under it, up to a blank line."""
    index = start
    while index < len(rows) and rows[index].is_blank:
        index += 1
    if index >= len(rows):
        return [], [], index
    header = [cell.strip() for cell in rows[index].filled]
    values: list[list[str]] = []
    index += 1
    while index < len(rows) and not rows[index].is_blank:
        values.append(list(rows[index].cells))
        index += 1
    return header, values, index


def _read_body(rows: Sequence[Row]) -> list[_Info | _Grid]:
    items: list[_Info | _Grid] = []
    title: str | None = None
    index = 0
    while index < len(rows):
        row = rows[index]
        if row.is_blank:
            index += 1
            continue
        first = row.first.casefold()
        if first == c.PLATE_INFORMATION:
            header, values, index = _table(rows, index + 1)
            if not values:
                raise InputFileError(c.INFO_NO_VALUES, line=row.number)
            keys = [h.casefold() for h in header]
            for name in (c.INFO_PLATE, c.INFO_REPEAT):
                if name not in keys:
                    msg = c.INFO_MISSING_COLUMN.format(column=name.capitalize())
                    raise InputFileError(msg, line=row.number + 1)
            mapping = {k: (values[0][i] if i < len(values[0]) else "") for i, k in enumerate(keys)}
            items.append(_Info(line=row.number, values=mapping))
            title = None
            continue
        if first == c.BACKGROUND_INFORMATION:
            # The background signal of each label: not a reading, skipped.
            _, _, index = _table(rows, index + 1)
            title = None
            continue
        if _grid_header(row) is not None:
            grid, index = _labelled_grid(rows, index, title)
            items.append(grid)
            title = None
            continue
        if _is_bare_row(row):
            grid, index = _bare_grid(rows, index, title)
            items.append(grid)
            title = None
            continue
        filled = row.filled
        title = filled[0] if len(filled) == 1 else None
        index += 1
    return items


def _groups(items: Sequence[_Info | _Grid]) -> list[_Group]:
    """Attach grids to their plate information block (before or after them)."""
    infos = [item for item in items if isinstance(item, _Info)]
    if not infos:
        line = next((i.line for i in items if isinstance(i, _Grid)), 1)
        raise InputFileError(c.NO_PLATE_INFORMATION, line=line)
    info_first = isinstance(items[0], _Info)
    groups: list[_Group] = []
    pending: list[_Grid] = []
    for item in items:
        if isinstance(item, _Info):
            group = _Group(info=item)
            if not info_first:
                group.grids.extend(pending)
                pending = []
            groups.append(group)
        elif info_first:
            groups[-1].grids.append(item)
        else:
            pending.append(item)
    if pending:
        raise InputFileError(c.GRID_WITHOUT_INFO, line=pending[0].line)
    for group in groups:
        if not group.grids:
            raise InputFileError(c.NO_GRIDS.format(line=group.info.line), line=group.info.line)
    return groups


def _subject(title: str, prefix: str) -> str:
    return title[len(prefix) :].strip(" :")


@dataclass
class _Series:
    plate: str
    label: str
    derived: bool
    grid: _Grid
    repeats: list[tuple[int, _Grid, _Info, frozenset[str]]] = field(default_factory=list)


def _reads_of_group(group: _Group) -> list[tuple[str, bool, _Grid, frozenset[str]]]:
    """(label, derived, grid, saturated wells) for each read grid of a block."""
    info = group.info.values
    results = [g for g in group.grids if (g.title or "").casefold().startswith(c.TITLE_RESULTS)]
    saturated: dict[str, frozenset[str]] = {}
    for grid in group.grids:
        title = (grid.title or "").casefold()
        if title.startswith(c.TITLE_SATURATED):
            subject = _subject(grid.title or "", "Saturated for")
            subject = re.sub(r"\(SAT=Saturated\)\s*$", "", subject, flags=re.I).strip()
            flagged = frozenset(
                well for well, raw in grid.cells.items() if raw.strip().upper() == c.SATURATED_TOKEN
            )
            saturated[subject] = flagged
    found: list[tuple[str, bool, _Grid, frozenset[str]]] = []
    fallback = clean_value(
        info.get(c.INFO_LABEL) or info.get(c.INFO_FORMULA) or info.get(c.INFO_MEAS) or ""
    )
    formula = bool(given(info.get(c.INFO_FORMULA)))
    for grid in group.grids:
        title = grid.title or ""
        folded = title.casefold()
        if folded.startswith(c.TITLE_RESULTS):
            label, derived = _subject(title, "Results for"), formula
        elif folded.startswith(c.TITLE_CALCULATED):
            label, derived = _subject(title, "Calculated results"), True
        elif folded.startswith(c.TITLE_SIGNAL):
            if results:
                continue
            label, derived = _subject(title, "Signal for"), formula
        elif folded.startswith(c.TITLE_SATURATED) or folded.startswith(c.SKIPPED_TITLES):
            continue
        elif not title:
            label, derived = fallback or "Results", formula
        else:
            label, derived = title, True
        found.append((label, derived, grid, saturated.get(label, frozenset())))
    return found


def read_envision(rows: Sequence[Row]) -> PeExport:
    trailer_start = next(
        (i for i, row in enumerate(rows) if row.first.casefold().startswith(c.TRAILER_STARTS)),
        len(rows),
    )
    trailer = _trailer(rows[trailer_start:])
    groups = _groups(_read_body(rows[:trailer_start]))

    series: dict[tuple[str, str], _Series] = {}
    plate_ids: dict[str, str | None] = {}
    for group in groups:
        info = group.info.values
        plate = clean_value(info.get(c.INFO_PLATE, ""))
        repeat_text = clean_value(info.get(c.INFO_REPEAT, ""))
        if not repeat_text.isdigit():
            msg = c.REPEAT_NOT_NUMBER.format(found=repeat_text)
            raise InputFileError(msg, line=group.info.line + 2)
        plate_ids.setdefault(plate, given(info.get(c.INFO_BARCODE)))
        for label, derived, grid, saturated in _reads_of_group(group):
            key = (plate, label)
            entry = series.setdefault(key, _Series(plate, label, derived, grid))
            if any(r == int(repeat_text) for r, *_ in entry.repeats):
                msg = c.DUPLICATE_READ.format(plate=plate, repeat=repeat_text, label=label)
                raise InputFileError(msg, line=grid.line)
            entry.repeats.append((int(repeat_text), grid, group.info, saturated))

    reads: list[PeRead] = []
    for entry in series.values():
        reads.append(_series_read(entry, plate_ids.get(entry.plate)))
    date_text = trailer.pop("_assay_started", None)
    return PeExport(
        family=c.FAMILY_ENVISION, reads=tuple(reads), metadata=trailer, date_text=date_text
    )


def _series_read(entry: _Series, plate_id: str | None) -> PeRead:
    repeats = sorted(entry.repeats, key=lambda r: r[0])
    first_repeat, first_grid, first_info, _ = repeats[0]
    date_text = given(first_info.values.get(c.INFO_DATE))
    times: tuple[float, ...] = ()
    if len(repeats) > 1:
        times = _repeat_times(entry, repeats)
    wells: dict[str, list[str]] = {}
    for position, (_, grid, _, _) in enumerate(repeats):
        for well, raw in grid.cells.items():
            wells.setdefault(well, [""] * len(repeats))[position] = raw
    saturated = frozenset().union(*(r[3] for r in repeats))
    metadata: dict[str, str] = {}
    temperature = given(first_info.values.get(c.INFO_TEMPERATURE))
    if temperature:
        metadata[Meta.TEMPERATURE] = temperature
    if len(repeats) == 1:
        metadata[c.META_REPEAT] = str(first_repeat)
    return PeRead(
        plate=entry.plate,
        label=entry.label,
        line=first_grid.line,
        rows=first_grid.rows,
        columns=first_grid.columns,
        cells={well: tuple(values) for well, values in wells.items()},
        times_s=times,
        plate_id=plate_id,
        derived=entry.derived,
        date_text=date_text,
        date_line=first_info.line + 2,
        saturated=saturated,
        metadata=metadata,
    )


def _repeat_times(
    entry: _Series, repeats: Sequence[tuple[int, _Grid, _Info, frozenset[str]]]
) -> tuple[float, ...]:
    moments: list[datetime] = []
    for repeat, _, info, _ in repeats:
        text = given(info.values.get(c.INFO_DATE))
        if text is None:
            msg = c.REPEAT_TIMES_UNKNOWN.format(
                plate=entry.plate, label=entry.label, count=len(repeats)
            )
            raise InputFileError(msg, line=info.line + 2)
        try:
            moment, _ = parse_pe_datetime(text)
        except ValueError as exc:
            raise InputFileError(c.BAD_DATE.format(found=text), line=info.line + 2) from exc
        if moments and moment < moments[-1]:
            msg = c.REPEAT_TIME_ORDER.format(repeat=repeat, plate=entry.plate, label=entry.label)
            raise InputFileError(msg, line=info.line + 2)
        moments.append(moment)
    return tuple((m - moments[0]).total_seconds() for m in moments)


def _trailer(rows: Sequence[Row]) -> dict[str, str]:
    """Assay, protocol and instrument facts from the trailer's 'Key,,,,value' lines."""
    found: dict[str, str] = {}

    def keep(key: str, value: str) -> None:
        if value and key not in found:
            found[key] = value

    for row in rows:
        filled = row.filled
        if not filled:
            continue
        exported = _EXPORTED_WITH.match(filled[0])
        if exported:
            keep(Meta.SOFTWARE, exported.group(1))
            keep(Meta.READER_MODEL, exported.group(2))
            continue
        if len(filled) < 2:
            continue
        key = filled[0].strip().rstrip(":").strip().casefold()
        value = clean_value(filled[-1])
        if key in c.TRAILER_SERIAL:
            keep(Meta.READER_SERIAL, value)
        elif key in c.TRAILER_PROTOCOL:
            keep(c.META_PROTOCOL, value)
        elif key in c.TRAILER_ASSAY_ID:
            keep(c.META_ASSAY_ID, value)
        elif key in c.TRAILER_ASSAY_STARTED:
            keep("_assay_started", value)
        elif key in c.TRAILER_EXCITATION:
            keep(c.META_EXCITATION, value)
        elif key in c.TRAILER_EMISSION:
            keep(c.META_EMISSION, value)
        elif key in c.TRAILER_MEASUREMENTS:
            keep(c.META_MEASUREMENT, value)
    return found
