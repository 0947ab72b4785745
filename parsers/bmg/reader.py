"""BMG exports → header fields and raw reads, with the shape checked and lines named.

Two families: MARS CSV (comma or semicolon; the same layout in an Excel export)
in its table view (``Well,Content,Raw Data (600),…`` with a ``Time`` row for
kinetic runs, one line per well) or its plate view (a ``Raw Data (…)`` title
and an A.. grid per read); and the older Omega reader-control ``.DAT`` file
(``Testname:`` header, ``Chromatic: n`` / ``Cycle: n`` blocks of tab grids).
The reader does not turn cells into numbers; every error names the line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from saa_lab.domain import Meta, NoValueReason
from saa_lab.errors import InputFileError
from saa_lab.wells import normalize_well

from ..base import parse_cell
from ..common import geometry_for
from ..dates import clock_seconds
from ..table import Row
from . import constants as c
from .structure import BmgExport, RawRead

__all__ = [
    "looks_like_dat",
    "looks_like_mars",
    "parse_time_s",
    "read_dat",
    "read_mars",
    "time_unit_of",
]

_MARS_KEY = re.compile(r"^\s*(User|Path|Test run no\.|Test name|Date|Time|ID\d)\s*:\s?(.*)$", re.I)
# Any 'Key: value' cell; taken only as the first cell of a header line (spilled ID text
# further along may hold colons).
_ANY_KEY = re.compile(r"^\s*([A-Za-z][\w .#/-]{0,40}?)\s*:\s?(.*)$")
_MARS_USER_LINE = re.compile(r"^\W{0,3}User:.*\b(?:Path:|Test run no\.:)", re.I)
_MARS_TEST_LINE = re.compile(r"^\W{0,3}Test name:.*\bDate:", re.I)
_DAT_DATE = re.compile(r"^Date:\s*(\S+)\s+Time:\s*(.+?)\s*$", re.I)
_DAT_KEY = re.compile(r"^([^:]+?)\s*:\s*(.*?)\s*$")
_DAT_WAVELENGTH = re.compile(r"^\s*(\d+):\s*(\S+)\s*(\S*)\s*$")
_WELL = re.compile(r"^\s*([A-Za-z]{1,2})\s*0*(\d{1,3})\s*$")
_NUMBER = re.compile(r"^[+-]?(\d+(?:[.,]\d*)?|[.,]\d+)$")
_HMS = re.compile(
    r"^(?:(?P<h>\d+(?:[.,]\d+)?)\s*h)?\s*(?:(?P<m>\d+(?:[.,]\d+)?)\s*min)?\s*"
    r"(?:(?P<s>\d+(?:[.,]\d+)?)\s*s)?$",
    re.I,
)
_UNIT_IN_LABEL = re.compile(r"[\[(]\s*(s|sec|min|h)\s*[\])]", re.I)


# --- sniffing --------------------------------------------------------------------------------


def _head_lines(head: str) -> list[str]:
    lines = [line for line in head.splitlines() if line.strip()]
    return [line for line in lines if not line.startswith("##SHEET")][: c.SNIFF_LINES]


def looks_like_mars(head: str) -> bool:
    """'User: …, Path: / Test run no.: …' and 'Test name: …, Date: …' near the top."""
    lines = _head_lines(head)
    return any(_MARS_USER_LINE.match(line) for line in lines) and any(
        _MARS_TEST_LINE.match(line) for line in lines
    )


def looks_like_dat(head: str) -> bool:
    """'Testname:' first, then 'Date: … Time: …' and the channel count or configuration."""
    lines = _head_lines(head)
    if not lines or not lines[0].lstrip("\ufeff").startswith(c.DAT_TESTNAME):
        return False
    has_date = any(_DAT_DATE.match(line) for line in lines)
    has_setup = any(
        line.startswith((c.DAT_CHANNELS, c.DAT_CONFIGURATION, "ID1:")) for line in lines
    )
    return has_date and has_setup


# --- shared helpers --------------------------------------------------------------------------


def _well(text: str, line: int) -> str:
    """The canonical well name (A1) of 'A01'/'A1'; 1536-well names are refused clearly."""
    match = _WELL.match(text)
    if match:
        letters, column = match.group(1), int(match.group(2))
        if len(letters) == 1 and (
            letters.islower() or letters.upper() > "P" or c.COLUMNS_1536 >= column > 24
        ):
            raise InputFileError(c.WELL_1536.format(well=text.strip()), line=line)
    well = normalize_well(text) if match and match.group(1).isupper() else None
    if well is None:
        raise InputFileError(c.TABLE_BAD_WELL.format(found=text.strip()), line=line)
    return well


def _to_float(text: str) -> float:
    return float(text.replace(",", "."))


def time_unit_of(label: str) -> str | None:
    match = _UNIT_IN_LABEL.search(label)
    return match.group(1).lower() if match else None


def parse_time_s(text: str, unit: str) -> float | None:
    """Seconds from a MARS time cell: '10' (in ``unit``), '0 h 15 min', '90 s', '1:30:00'."""
    cell = text.strip()
    if not cell:
        return None
    if _NUMBER.match(cell):
        return _to_float(cell) * c.TIME_UNITS_S[unit]
    clock = clock_seconds(cell)
    if clock is not None:
        return clock
    parts = _HMS.match(cell)
    if parts and any(parts.groupdict().values()):
        h, m, s = (_to_float(parts.group(k)) if parts.group(k) else 0.0 for k in "hms")
        return h * 3600 + m * 60 + s
    return None


# --- MARS ------------------------------------------------------------------------------------


@dataclass
class _Header:
    fields: dict[str, str] = field(default_factory=dict)
    date_line: int | None = None


def _header_row(row: Row, delimiter: str, header: _Header) -> bool:
    """Take 'Key: value' cells; unkeyed cells continue the value before them (ID2 spills)."""
    last: str | None = None
    found = False
    for position, cell in enumerate(row.cells):
        match = _MARS_KEY.match(cell) or (_ANY_KEY.match(cell) if position == 0 else None)
        if match:
            key = match.group(1).strip().lower()
            header.fields.setdefault(key, match.group(2).strip())
            last = key if key in c.MARS_FREE_TEXT_KEYS else None
            found = True
            if key == c.MARS_DATE:
                header.date_line = row.number
        elif cell.strip() and last is not None and header.fields.get(last) is not None:
            header.fields[last] = f"{header.fields[last]}{delimiter}{cell}".strip()
    return found


def read_mars(rows: Sequence[Row], *, delimiter: str) -> BmgExport:
    header = _Header()
    mode: str | None = None
    index = 0
    while index < len(rows):
        row = rows[index]
        index += 1
        if row.is_blank:
            continue
        if _header_row(row, delimiter, header):
            continue
        first = row.first
        if first.casefold().startswith(c.MARS_MODES) and len(row.filled) == 1:
            mode = first
            break
        if not header.fields:
            raise InputFileError(c.NO_MARS_HEADER, line=row.number)
        raise InputFileError(c.NO_MODE, line=row.number)
    if c.MARS_USER not in header.fields and c.MARS_TEST_NAME not in header.fields:
        raise InputFileError(c.NO_MARS_HEADER, line=rows[0].number if rows else None)
    if mode is None:
        raise InputFileError(c.NO_MODE, line=rows[-1].number if rows else None)
    if any(marker in mode.casefold() for marker in c.SPECTRUM_MARKERS):
        raise InputFileError(
            c.SPECTRUM_NOT_SUPPORTED.format(mode=mode), line=rows[index - 1].number
        )

    body = rows[index:]
    first_data = next((r for r in body if not r.is_blank), None)
    if first_data is None:
        raise InputFileError(c.NO_DATA, line=rows[index - 1].number)
    if first_data.first.casefold() in (c.TABLE_WELL, c.TABLE_WELL_ROW):
        view = c.VIEW_TABLE
        reads, metadata = _read_tables(body)
    else:
        view = c.VIEW_PLATE
        reads, metadata = _read_plate_view(body)
    if not reads:
        raise InputFileError(c.NO_DATA, line=first_data.number)
    date = header.fields.get(c.MARS_DATE)
    time = header.fields.get(c.MARS_TIME)
    date_text = f"{date} {time}".strip() if date else None
    return BmgExport(
        view=view,
        mode=mode,
        header=header.fields,
        reads=tuple(reads),
        date_text=date_text,
        date_line=header.date_line,
        metadata=metadata,
    )


# --- MARS table view -------------------------------------------------------------------------


@dataclass(frozen=True)
class _TableLayout:
    line: int
    width: int
    data_start: int
    well_index: int | None
    row_index: int | None
    col_index: int | None
    titles: tuple[str, ...]


def _table_layout(row: Row) -> _TableLayout:
    names = [cell.casefold() for cell in row.filled]
    data_start = 0
    while data_start < len(names) and names[data_start] in c.TABLE_ID_COLUMNS:
        data_start += 1
    if data_start == len(names):
        found = ", ".join(row.filled)
        raise InputFileError(c.TABLE_NO_DATA_COLUMNS.format(found=found), line=row.number)
    ids = names[:data_start]
    well_index = ids.index(c.TABLE_WELL) if c.TABLE_WELL in ids else None
    row_index = ids.index(c.TABLE_WELL_ROW) if c.TABLE_WELL_ROW in ids else None
    col_index = next((i for i, n in enumerate(ids) if n in (c.TABLE_WELL_COL, "well column")), None)
    if well_index is None and (row_index is None or col_index is None):
        raise InputFileError(c.TABLE_NO_WELL_COLUMN, line=row.number)
    titles: list[str] = []
    for cell in row.filled[data_start:]:
        titles.append(cell or (titles[-1] if titles else ""))
    if not titles[0]:
        found = ", ".join(row.filled)
        raise InputFileError(c.TABLE_NO_DATA_COLUMNS.format(found=found), line=row.number)
    return _TableLayout(
        line=row.number,
        width=len(row.filled),
        data_start=data_start,
        well_index=well_index,
        row_index=row_index,
        col_index=col_index,
        titles=tuple(titles),
    )


def _well_text(row: Row, layout: _TableLayout) -> str:
    if layout.well_index is not None:
        return row.cell(layout.well_index)
    assert layout.row_index is not None and layout.col_index is not None
    letter, column = row.cell(layout.row_index), row.cell(layout.col_index)
    return f"{letter}{column}" if letter or column else ""


def _time_row(row: Row, layout: _TableLayout) -> tuple[str, list[str]] | None:
    """(label, cells) when the row above the wells carries the columns' times."""
    label = next((row.cell(i) for i in range(layout.data_start) if row.cell(i)), "")
    if not label.casefold().startswith(c.TABLE_TIME):
        return None
    cells = [row.cell(layout.data_start + i) for i in range(len(layout.titles))]
    return label, cells


def _read_tables(body: Sequence[Row]) -> tuple[list[RawRead], dict[str, str]]:
    reads: list[RawRead] = []
    metadata: dict[str, str] = {}
    index = 0
    while index < len(body):
        row = body[index]
        if row.is_blank:
            index += 1
            continue
        if row.first.casefold() in (c.TABLE_WELL, c.TABLE_WELL_ROW):
            table_reads, index, unit = _read_table(body, index)
            reads.extend(table_reads)
            if unit:
                metadata.setdefault(c.META_TIME_UNIT, unit)
            continue
        if _WELL.match(row.first) and len(row.filled) > 1:
            raise InputFileError(c.ROWS_AFTER_TABLE, line=row.number)
        index += 1
    return reads, metadata


def _read_table(body: Sequence[Row], start: int) -> tuple[list[RawRead], int, str | None]:
    layout = _table_layout(body[start])
    index = start + 1
    times: tuple[str, list[str]] | None = None
    time_line = 0
    # Rows between the header and the first well: the time row (others, e.g. 'Cycle', skipped).
    while index < len(body):
        row = body[index]
        if row.is_blank:
            index += 1
            continue
        if _well_text(row, layout):
            break
        found = _time_row(row, layout)
        if found is not None and times is None:
            times, time_line = found, row.number
        index += 1
    series: dict[str, list[str]] = {}
    first_well_line = body[index].number if index < len(body) else layout.line
    while index < len(body) and not body[index].is_blank:
        row = body[index]
        text = _well_text(row, layout)
        if not text:
            break
        well = _well(text, row.number)
        if well in series:
            raise InputFileError(c.TABLE_DUPLICATE_WELL.format(well=well), line=row.number)
        if len(row.cells) < layout.width:
            msg = c.TABLE_SHORT_ROW.format(well=well, found=len(row.cells), expected=layout.width)
            raise InputFileError(msg, line=row.number)
        series[well] = [row.cells[layout.data_start + i] for i in range(len(layout.titles))]
        index += 1
    if not series:
        raise InputFileError(c.TABLE_NO_WELLS, line=first_well_line)

    unit: str | None = None
    seconds: list[float | None] = [None] * len(layout.titles)
    if times is not None:
        label, cells = times
        unit = time_unit_of(label) or c.DEFAULT_TIME_UNIT
        for i, cell in enumerate(cells):
            seconds[i] = parse_time_s(cell, unit)
    rows, columns = geometry_for(series)
    reads: list[RawRead] = []
    for title in dict.fromkeys(layout.titles):
        positions = [i for i, t in enumerate(layout.titles) if t == title]
        read_times: tuple[float, ...] = ()
        if len(positions) > 1:
            if times is None:
                msg = c.TABLE_TIME_MISSING.format(title=title, count=len(positions))
                raise InputFileError(msg, line=layout.line)
            read_times = _relative_times(positions, seconds, times[1], layout, time_line)
        reads.append(
            RawRead(
                title=title,
                line=layout.line,
                rows=rows,
                columns=columns,
                cells={w: tuple(cells[i] for i in positions) for w, cells in series.items()},
                times_s=read_times,
            )
        )
    return reads, index, unit


def _relative_times(
    positions: Sequence[int],
    seconds: Sequence[float | None],
    cells: Sequence[str],
    layout: _TableLayout,
    line: int,
) -> tuple[float, ...]:
    found: list[float] = []
    for position in positions:
        value = seconds[position]
        column = layout.data_start + position + 1
        if value is None:
            msg = c.TABLE_BAD_TIME.format(found=cells[position], column=column)
            raise InputFileError(msg, line=line)
        if found and value < found[-1]:
            msg = c.TABLE_TIME_ORDER.format(found=cells[position], column=column)
            raise InputFileError(msg, line=line)
        found.append(value)
    return tuple(t - found[0] for t in found)


# --- MARS plate view -------------------------------------------------------------------------


def _grid_columns(row: Row) -> int | None:
    """N when the row is ',1,2,…,N' (an empty corner, then numbers from 1), else None."""
    filled = row.filled
    if len(filled) < 2 or filled[0] or filled[1] != "1":
        return None
    numbers = filled[1:]
    if any(cell != str(n) for n, cell in enumerate(numbers, start=1)):
        found = " ".join(numbers)
        raise InputFileError(c.GRID_BAD_HEADER.format(found=found), line=row.number)
    return len(numbers)


def _read_grid(rows: Sequence[Row], start: int, columns: int) -> tuple[dict[str, str], int, int]:
    """Rows A.. under the header at ``start``: (well -> raw cell, next index, row count)."""
    if columns == c.COLUMNS_1536:
        raise InputFileError(c.PLATE_1536, line=rows[start].number)
    if columns not in c.ROWS_FOR_COLUMNS:
        msg = c.GRID_UNSUPPORTED_COLUMNS.format(columns=columns)
        raise InputFileError(msg, line=rows[start].number)
    expected_rows = c.ROWS_FOR_COLUMNS[columns]
    cells: dict[str, str] = {}
    count = 0
    index = start + 1
    while index < len(rows) and len(rows[index].first) == 1 and rows[index].first.isalpha():
        row = rows[index]
        expected = c.ROW_LETTERS[count] if count < expected_rows else "-"
        if row.first != expected:
            raise InputFileError(
                c.GRID_BAD_ROW.format(found=row.first, expected=expected), line=row.number
            )
        values = [cell.strip() for cell in row.cells[1:]]
        while len(values) > columns and not values[-1]:
            values.pop()
        if len(values) > columns:
            msg = c.GRID_LONG_ROW.format(row=row.first, found=len(values), columns=columns)
            raise InputFileError(msg, line=row.number)
        for column, raw in enumerate(values, start=1):
            if raw:
                cells[f"{row.first}{column}"] = row.cells[column]
        count += 1
        index += 1
    if count != expected_rows:
        line = rows[index - 1].number
        msg = c.GRID_ROW_COUNT.format(found=count, columns=columns, expected=expected_rows)
        raise InputFileError(msg, line=line)
    return cells, index, expected_rows


def _is_reading(raw: str) -> bool:
    """A number or an instrument token, as opposed to layout text ('Sample X1')."""
    parsed = parse_cell(raw, decimal_comma=True)
    return parsed.value is not None or parsed.reason not in (
        NoValueReason.NON_NUMERIC,
        NoValueReason.EMPTY,
    )


def _read_plate_view(body: Sequence[Row]) -> tuple[list[RawRead], dict[str, str]]:
    reads: list[RawRead] = []
    first_line: dict[str, int] = {}
    skipped: list[str] = []
    title: tuple[str, int] | None = None
    index = 0
    while index < len(body):
        row = body[index]
        if row.is_blank:
            index += 1
            continue
        columns = _grid_columns(row)
        if columns is None:
            filled = row.filled
            title = (filled[0], row.number) if len(filled) == 1 else None
            index += 1
            continue
        cells, index, row_count = _read_grid(body, index, columns)
        if title is None:
            raise InputFileError(c.GRID_NO_TITLE, line=row.number)
        name, line = title
        title = None
        if not any(_is_reading(raw) for raw in cells.values()):
            skipped.append(name)
            continue
        if name in first_line:
            msg = c.GRID_DUPLICATE_TITLE.format(title=name, first=first_line[name])
            raise InputFileError(msg, line=line)
        first_line[name] = line
        reads.append(
            RawRead(
                title=name,
                line=line,
                rows=row_count,
                columns=columns,
                cells={well: (raw,) for well, raw in cells.items()},
            )
        )
    metadata = {c.META_SKIPPED_GRIDS: ", ".join(skipped)} if skipped else {}
    return reads, metadata


# --- Omega reader-control .DAT ---------------------------------------------------------------


@dataclass
class _DatBlock:
    chromatic: int
    line: int
    cycle: int = 1
    time_s: float | None = None
    temperature: str | None = None
    cells: dict[str, str] | None = None
    rows: int = 0
    columns: int = 0


def _dat_int(key: str, value: str, line: int) -> int:
    if not value.strip().isdigit():
        raise InputFileError(c.DAT_BAD_NUMBER.format(key=key, found=value.strip()), line=line)
    return int(value)


def read_dat(rows: Sequence[Row]) -> BmgExport:
    """The .DAT header keys, the wavelength table and one read per chromatic."""
    texts = ["\t".join(row.cells) for row in rows]
    first = next((i for i, t in enumerate(texts) if t.strip()), None)
    if first is None or not texts[first].lstrip("\ufeff").startswith(c.DAT_TESTNAME):
        raise InputFileError(c.DAT_NO_HEADER, line=rows[first].number if first is not None else 1)
    header: dict[str, str] = {}
    wavelengths: dict[int, tuple[str, str]] = {}
    date_text: str | None = None
    date_line: int | None = None
    data_start: int | None = None
    in_wavelengths = False
    for i, text in enumerate(texts):
        stripped = text.strip().lstrip("\ufeff")
        if stripped == c.DAT_MEASUREMENT_DATA:
            data_start = i + 1
            break
        if in_wavelengths:
            match = _DAT_WAVELENGTH.match(text)
            if match:
                wavelengths[int(match.group(1))] = (match.group(2), match.group(3))
                continue
            in_wavelengths = False
        date = _DAT_DATE.match(stripped)
        if date and date_text is None:
            date_text, date_line = f"{date.group(1)} {date.group(2)}", rows[i].number
            continue
        if stripped.startswith(c.DAT_WAVELENGTH_TABLE):
            in_wavelengths = True
            continue
        match = _DAT_KEY.match(stripped)
        if match and "\t" not in stripped:
            header.setdefault(match.group(1), match.group(2))
    if data_start is None:
        raise InputFileError(c.DAT_NO_DATA, line=rows[-1].number)
    blocks = _read_dat_blocks(rows, data_start)
    if not blocks:
        raise InputFileError(c.DAT_NO_DATA, line=rows[data_start - 1].number)

    configuration = header.get(c.DAT_CONFIGURATION, "")
    reads: list[RawRead] = []
    for chromatic in sorted({b.chromatic for b in blocks}):
        series = sorted((b for b in blocks if b.chromatic == chromatic), key=lambda b: b.cycle)
        spec, gain = wavelengths.get(chromatic, ("", ""))
        title = f"Chromatic {chromatic}" + (f" ({spec})" if spec and spec != "-" else "")
        times: tuple[float, ...] = ()
        if len(series) > 1:
            missing = next((b for b in series if b.time_s is None), None)
            if missing is not None:
                msg = c.DAT_TIME_MISSING.format(chromatic=chromatic, cycle=missing.cycle)
                raise InputFileError(msg, line=missing.line)
            first_time = series[0].time_s or 0.0
            times = tuple((b.time_s or 0.0) - first_time for b in series)
        wells: dict[str, list[str]] = {}
        for position, block in enumerate(series):
            for well, raw in (block.cells or {}).items():
                wells.setdefault(well, [""] * len(series))[position] = raw
        metadata = {c.META_CHROMATIC: str(chromatic)}
        if spec and spec != "-":
            metadata[c.META_WAVELENGTH_SPEC] = spec
        if gain:
            metadata[c.META_GAIN] = gain
        if series[0].temperature:
            metadata[Meta.TEMPERATURE] = series[0].temperature
        reads.append(
            RawRead(
                title=title,
                line=series[0].line,
                rows=series[0].rows,
                columns=series[0].columns,
                cells={well: tuple(values) for well, values in wells.items()},
                times_s=times,
                metadata=metadata,
            )
        )
    return BmgExport(
        view=c.VIEW_DAT,
        mode=configuration,
        header=header,
        reads=tuple(reads),
        date_text=date_text,
        date_line=date_line,
    )


def _dat_grid_columns(row: Row) -> int | None:
    """N when the row numbers the columns 1..N (the .DAT header has no corner cell)."""
    numbers = [cell.strip() for cell in row.cells]
    while numbers and not numbers[-1]:
        numbers.pop()
    if numbers and not numbers[0]:
        numbers.pop(0)
    if len(numbers) < 2 or numbers[0] != "1":
        return None
    if any(cell != str(n) for n, cell in enumerate(numbers, start=1)):
        raise InputFileError(c.GRID_BAD_HEADER.format(found=" ".join(numbers)), line=row.number)
    return len(numbers)


def _read_dat_blocks(rows: Sequence[Row], start: int) -> list[_DatBlock]:
    blocks: list[_DatBlock] = []
    seen: set[tuple[int, int]] = set()
    block: _DatBlock | None = None
    index = start
    while index < len(rows):
        row = rows[index]
        text = "\t".join(row.cells).strip()
        key, _, value = text.partition(":")
        key = key.strip()
        if key == c.DAT_CHROMATIC and value.strip():
            block = _DatBlock(_dat_int(key, value, row.number), row.number)
            blocks.append(block)
        elif block is not None and key == c.DAT_CYCLE and value.strip():
            block.cycle = _dat_int(key, value, row.number)
        elif block is not None and key == c.DAT_TIME:
            try:
                block.time_s = float(value.strip().replace(",", "."))
            except ValueError as exc:
                msg = c.DAT_BAD_NUMBER.format(key=key, found=value.strip())
                raise InputFileError(msg, line=row.number) from exc
        elif block is not None and key.startswith(c.DAT_TEMPERATURE_PREFIX):
            block.temperature = value.strip()
        elif block is not None:
            columns = _dat_grid_columns(row)
            if columns is not None:
                if block.cells is not None:
                    raise InputFileError(
                        c.DAT_DUPLICATE_BLOCK.format(chromatic=block.chromatic, cycle=block.cycle),
                        line=row.number,
                    )
                block.cells, index, block.rows = _read_grid(rows, index, columns)
                block.columns = columns
                identity = (block.chromatic, block.cycle)
                if identity in seen:
                    msg = c.DAT_DUPLICATE_BLOCK.format(chromatic=block.chromatic, cycle=block.cycle)
                    raise InputFileError(msg, line=block.line)
                seen.add(identity)
                continue
        index += 1
    for found in blocks:
        if found.cells is None:
            msg = c.DAT_BLOCK_NO_GRID.format(chromatic=found.chromatic, cycle=found.cycle)
            raise InputFileError(msg, line=found.line)
    return blocks
