"""VICTOR X3 (Wallac 1420) tab text and VICTOR Nivo CSV → reads, shape checked, lines named.

VICTOR X3: a long list ``Plate Repeat Well Type Time <label> Time <label> …``
(one line per well and repeat, each label with its own per-well elapsed time),
then per repeat a ``Plate Repeat End time Start temp. End temp. BarCode`` block
with, per label, its background and a bare 8×12 grid; a ``Protocol
description`` trailer (``Key ....... value``). Either part may come alone.

VICTOR Nivo: ``WELL RESULTS``, key lines (``MEASUREMENT START DATE,<local>,,UTC,
<ISO>``), per operation a ``N OPERATION,<label>`` line and a table ``Well,
Time(s),t1,t2,…`` with one line per well; then ``PARAMETERS`` (program version,
serial, plate format, filters per operation) and a ``PLATE MAP`` of ``X``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from saa_lab.domain import Meta
from saa_lab.errors import InputFileError

from ..table import Row
from . import constants as c
from .common import clean_value, clock_seconds, geometry_for, given, well_name
from .structure import PeExport, PeRead

__all__ = ["looks_like_nivo", "looks_like_x3", "read_nivo", "read_x3"]

_X3_FIRST = re.compile(r"^\W?Plate\tRepeat\t(?:Well\tType|End time)\b")
_DOTTED_KEY = re.compile(r"^(.+?)\s*:?\s*\.{2,}\s*(.*?)\s*$")
_PLATE_SIZE = re.compile(r"(\d+)\s*[xX×]\s*(\d+)")
_OPERATION = re.compile(r"^(\d+)\s+OPERATION$", re.I)
_NIVO_NUMBER = re.compile(r"^[+-]?(\d+(?:[.,]\d*)?|[.,]\d+)$")
_FILTER_NM = re.compile(r"^\s*(\d{3,4}(?:\.\d+)?)")


def _first_line(head: str) -> str:
    return next((line for line in head.splitlines() if line.strip()), "")


def looks_like_x3(head: str) -> bool:
    return bool(_X3_FIRST.match(_first_line(head)))


def looks_like_nivo(head: str) -> bool:
    first = _first_line(head).lstrip("\ufeff").strip().rstrip(",;\t").strip()
    return first == c.NIVO_TITLE and (c.NIVO_START in head or c.NIVO_PROTOCOL in head)


# --- VICTOR X3 -----------------------------------------------------------------------------------


@dataclass
class _X3Label:
    name: str
    value_index: int
    time_index: int | None
    # (plate, repeat) -> well -> (raw value, raw time, line)
    cells: dict[tuple[str, int], dict[str, tuple[str, str, int]]] = field(default_factory=dict)


@dataclass
class _X3Block:
    plate: str
    repeat: int
    line: int
    end_time: str
    start_temp: str
    barcode: str
    grids: dict[str, tuple[dict[str, str], int, int]] = field(default_factory=dict)
    backgrounds: dict[str, str] = field(default_factory=dict)


def read_x3(rows: Sequence[Row]) -> PeExport:
    start = next((i for i, r in enumerate(rows) if not r.is_blank), None)
    if start is None or not _X3_FIRST.match("\t".join(rows[start].cells)):
        raise InputFileError(c.X3_NO_HEADER, line=rows[start].number if start is not None else 1)
    index = start
    labels: list[_X3Label] = []
    if tuple(cell.strip() for cell in rows[start].cells[:4]) == c.X3_LIST_HEADER:
        labels, index = _x3_list(rows, start)
    blocks, index = _x3_blocks(rows, index)
    trailer = _x3_trailer(rows[index:])
    reads: list[PeRead] = []
    geometry = trailer.pop("_geometry", None)
    if labels:
        for label in labels:
            reads.extend(_x3_list_reads(label, blocks, geometry))
    else:
        reads.extend(_x3_block_reads(blocks, geometry))
    if not reads:
        raise InputFileError(c.X3_NO_DATA, line=rows[start].number)
    date_text = trailer.pop("_measured_on", None)
    return PeExport(
        family=c.FAMILY_VICTOR_X3, reads=tuple(reads), metadata=trailer, date_text=date_text
    )


def _x3_list(rows: Sequence[Row], start: int) -> tuple[list[_X3Label], int]:
    header = [cell.strip() for cell in rows[start].cells]
    while header and not header[-1]:
        header.pop()
    labels: list[_X3Label] = []
    for i, name in enumerate(header[4:], start=4):
        if name and name != c.X3_TIME:
            time_index = i - 1 if header[i - 1] == c.X3_TIME else None
            labels.append(_X3Label(name=name, value_index=i, time_index=time_index))
    index = start + 1
    while index < len(rows):
        row = rows[index]
        if row.is_blank or not row.first.isdigit():
            break  # the per-repeat blocks ('Plate …') or the trailer follow the list
        if len(row.cells) < len(header):
            msg = c.X3_SHORT_ROW.format(found=len(row.cells), expected=len(header))
            raise InputFileError(msg, line=row.number)
        plate, repeat_text = row.cell(0), row.cell(1)
        if not repeat_text.isdigit():
            raise InputFileError(c.REPEAT_NOT_NUMBER.format(found=repeat_text), line=row.number)
        well = well_name(row.cell(2), line=row.number, message=c.X3_BAD_WELL)
        for label in labels:
            cells = label.cells.setdefault((plate, int(repeat_text)), {})
            if well in cells:
                msg = c.X3_DUPLICATE_WELL.format(well=well, repeat=repeat_text, plate=plate)
                raise InputFileError(msg, line=row.number)
            time = row.cells[label.time_index] if label.time_index is not None else ""
            cells[well] = (row.cells[label.value_index], time, row.number)
        index += 1
    return labels, index


def _x3_blocks(rows: Sequence[Row], start: int) -> tuple[list[_X3Block], int]:
    blocks: list[_X3Block] = []
    index = start
    current: _X3Block | None = None
    while index < len(rows):
        row = rows[index]
        if row.is_blank:
            index += 1
            continue
        cells = [cell.strip() for cell in row.cells]
        if tuple(cells[:3]) == c.X3_BLOCK_HEADER:
            values = rows[index + 1] if index + 1 < len(rows) else None
            if values is None or values.is_blank:
                raise InputFileError(c.X3_BLOCK_NO_VALUES, line=row.number)
            repeat_text = values.cell(1)
            if not repeat_text.isdigit():
                raise InputFileError(
                    c.REPEAT_NOT_NUMBER.format(found=repeat_text), line=values.number
                )
            current = _X3Block(
                plate=values.cell(0),
                repeat=int(repeat_text),
                line=row.number,
                end_time=values.cell(2),
                start_temp=values.cell(3),
                barcode=values.cell(5),
            )
            blocks.append(current)
            index += 2
            continue
        filled = row.filled
        if current is None or filled[0] == c.X3_PROTOCOL_DESCRIPTION:
            break
        if len(filled) != 1 or _is_number(filled[0]):
            index += 1
            continue
        # A label line: its background value, then a bare grid after a blank line.
        label_at = index
        label = filled[0]
        index += 1
        background = None
        if index < len(rows) and len(rows[index].filled) == 1:
            background = rows[index].filled[0]
            index += 1
        while index < len(rows) and rows[index].is_blank:
            index += 1
        grid_rows: list[Row] = []
        while index < len(rows) and not rows[index].is_blank and len(rows[index].filled) > 1:
            grid_rows.append(rows[index])
            index += 1
        if not grid_rows:
            # Not a label: the blocks have ended (the trailer starts at this line).
            return blocks, label_at
        if background is not None:
            current.backgrounds[label] = background
        current.grids[label] = _x3_grid(grid_rows, label, current.repeat, row.number)
    return blocks, index


def _is_number(text: str) -> bool:
    return bool(_NIVO_NUMBER.match(text.strip()))


def _x3_grid(
    rows: Sequence[Row], label: str, repeat: int, line: int
) -> tuple[dict[str, str], int, int]:
    columns = len(rows[0].filled) if rows else 0
    if (len(rows), columns) not in ((8, 12), (16, 24)) or any(
        len(row.filled) > columns for row in rows
    ):
        msg = c.X3_GRID_SHAPE.format(label=label, repeat=repeat, rows=len(rows), columns=columns)
        raise InputFileError(msg, line=rows[0].number if rows else line)
    cells = {
        f"{c.ROW_LETTERS[r]}{col}": row.cells[col - 1]
        for r, row in enumerate(rows)
        for col in range(1, columns + 1)
        if col - 1 < len(row.cells) and row.cells[col - 1].strip()
    }
    return cells, len(rows), columns


def _x3_trailer(rows: Sequence[Row]) -> dict[str, str]:
    found: dict[str, str] = {}
    for row in rows:
        text = "\t".join(row.cells).strip()
        match = _DOTTED_KEY.match(text)
        if not match:
            continue
        key, value = match.group(1).strip().rstrip(":").casefold(), match.group(2).strip()
        if not value:
            continue
        if key == c.X3_MEASURED_ON:
            found.setdefault("_measured_on", value)
        elif key == c.X3_PLATE_TYPE:
            size = _PLATE_SIZE.search(value)
            if size:
                found.setdefault("_geometry", f"{size.group(1)}x{size.group(2)}")
        elif key == c.X3_SERIAL:
            found.setdefault(Meta.READER_SERIAL, value)
        elif key == c.X3_PROTOCOL:
            found.setdefault(c.META_PROTOCOL, value)
    return found


def _geometry(text: str | None, wells: Sequence[str]) -> tuple[int, int]:
    if text:
        rows, columns = (int(part) for part in text.split("x"))
        if c.ROWS_FOR_COLUMNS.get(columns) == rows:
            return rows, columns
    return geometry_for(wells)


def _x3_list_reads(
    label: _X3Label, blocks: Sequence[_X3Block], geometry: str | None
) -> list[PeRead]:
    reads: list[PeRead] = []
    plates = list(dict.fromkeys(plate for plate, _ in label.cells))
    for plate in plates:
        repeats = sorted(r for p, r in label.cells if p == plate)
        wells = list(dict.fromkeys(w for r in repeats for w in label.cells[(plate, r)]))
        cells = {
            well: tuple(label.cells[(plate, r)].get(well, ("", "", 0))[0] for r in repeats)
            for well in wells
        }
        times: tuple[float, ...] = ()
        source = "well times"
        if len(repeats) > 1 and label.time_index is not None:
            times = _x3_list_times(label, plate, repeats)
        elif len(repeats) > 1:
            series = sorted((b for b in blocks if b.plate == plate), key=lambda b: b.repeat)
            if [b.repeat for b in series] != repeats:
                msg = c.REPEAT_TIMES_UNKNOWN.format(
                    plate=plate, label=label.name, count=len(repeats)
                )
                raise InputFileError(msg)
            times, source = _block_times(series), "repeat end times"
        rows, columns = _geometry(geometry, wells)
        reads.append(_x3_read(plate, label.name, rows, columns, cells, times, blocks, source))
    return reads


def _x3_list_times(label: _X3Label, plate: str, repeats: Sequence[int]) -> tuple[float, ...]:
    """Each repeat's time is its first well's elapsed time (hh:mm:ss.ss from the run's start)."""
    found: list[float] = []
    for repeat in repeats:
        seconds = []
        for _, raw_time, line in label.cells[(plate, repeat)].values():
            value = clock_seconds(raw_time)
            if value is None:
                raise InputFileError(c.X3_BAD_TIME.format(found=raw_time.strip()), line=line)
            seconds.append(value)
        found.append(min(seconds))
    return tuple(t - found[0] for t in found)


def _x3_block_reads(blocks: Sequence[_X3Block], geometry: str | None) -> list[PeRead]:
    reads: list[PeRead] = []
    keys = list(dict.fromkeys((b.plate, name) for b in blocks for name in b.grids))
    for plate, name in keys:
        series = sorted(
            (b for b in blocks if b.plate == plate and name in b.grids), key=lambda b: b.repeat
        )
        wells = list(dict.fromkeys(w for b in series for w in b.grids[name][0]))
        cells = {well: tuple(b.grids[name][0].get(well, "") for b in series) for well in wells}
        times: tuple[float, ...] = ()
        if len(series) > 1:
            times = _block_times(series)
        grid_rows, grid_columns = series[0].grids[name][1:]
        rows, columns = _geometry(geometry or f"{grid_rows}x{grid_columns}", wells)
        reads.append(_x3_read(plate, name, rows, columns, cells, times, blocks, "repeat end times"))
    return reads


def _block_times(series: Sequence[_X3Block]) -> tuple[float, ...]:
    """Repeat times from the blocks' end times (clock times; a day is added past midnight)."""
    found: list[float] = []
    for block in series:
        try:
            moment = datetime.strptime(block.end_time, "%I:%M:%S %p")  # noqa: DTZ007
        except ValueError:
            seconds = clock_seconds(block.end_time)
            if seconds is None:
                raise InputFileError(
                    c.X3_BAD_TIME.format(found=block.end_time), line=block.line + 1
                ) from None
        else:
            seconds = moment.hour * 3600 + moment.minute * 60 + moment.second
        while found and seconds < found[-1]:
            seconds += 86400
        found.append(seconds)
    return tuple(t - found[0] for t in found)


def _x3_read(
    plate: str,
    label: str,
    rows: int,
    columns: int,
    cells: dict[str, tuple[str, ...]],
    times: tuple[float, ...],
    blocks: Sequence[_X3Block],
    time_source: str,
) -> PeRead:
    first = min((b for b in blocks if b.plate == plate), key=lambda b: b.repeat, default=None)
    metadata: dict[str, str] = {}
    if len(times) > 1:
        metadata[c.META_TIME_SOURCE] = time_source
    plate_id = None
    if first is not None:
        plate_id = given(first.barcode)
        temperature = given(first.start_temp)
        if temperature:
            metadata[Meta.TEMPERATURE] = temperature
        background = first.backgrounds.get(label)
        if background:
            metadata[c.META_BACKGROUND] = background
    return PeRead(
        plate=plate,
        label=label,
        line=first.line if first is not None else 1,
        rows=rows,
        columns=columns,
        cells=cells,
        times_s=times,
        plate_id=plate_id,
        metadata=metadata,
    )


# --- VICTOR Nivo ---------------------------------------------------------------------------------


@dataclass
class _NivoTable:
    operation: str
    label: str
    line: int
    times: list[float]
    cells: dict[str, tuple[str, ...]]


def read_nivo(rows: Sequence[Row]) -> PeExport:
    parameters_at = next((i for i, r in enumerate(rows) if r.first == c.NIVO_PARAMETERS), len(rows))
    results, parameters = rows[:parameters_at], rows[parameters_at:]
    keys: dict[str, list[str]] = {}
    key_lines: dict[str, int] = {}
    tables: list[_NivoTable] = []
    operation, label = "", ""
    index = 0
    while index < len(results):
        row = results[index]
        first = row.first
        if first == c.NIVO_WELL or (not first and row.cell(1) == c.NIVO_CYCLE):
            table, index = _nivo_table(results, index, operation, label)
            tables.append(table)
            continue
        operation_match = _OPERATION.match(first)
        if operation_match:
            operation, label = operation_match.group(1), row.cell(1)
        elif first and first not in keys:
            keys[first] = [cell.strip() for cell in row.cells[1:]]
            key_lines[first] = row.number
        index += 1
    if not tables:
        raise InputFileError(c.NIVO_NO_TABLE, line=results[-1].number if results else 1)
    params, filters = _nivo_parameters(parameters)

    start = keys.get(c.NIVO_START, [])
    local = start[0] if start else None
    utc = None
    if c.NIVO_UTC in start:
        position = start.index(c.NIVO_UTC)
        utc = start[position + 1] if position + 1 < len(start) else None
    barcode = clean_value(keys.get(c.NIVO_BARCODE, [""])[0] if keys.get(c.NIVO_BARCODE) else "")
    plate = clean_value(keys.get(c.NIVO_PLATE, ["1"])[0] if keys.get(c.NIVO_PLATE) else "1")
    temperature = given(
        keys.get(c.NIVO_TEMPERATURE, [""])[0] if keys.get(c.NIVO_TEMPERATURE) else None
    )
    shared: dict[str, str] = dict(params)
    if barcode:
        shared[c.META_BARCODE] = barcode
    if temperature:
        shared[Meta.TEMPERATURE] = temperature
    protocol = keys.get(c.NIVO_PROTOCOL)
    if protocol and protocol[0]:
        shared[c.META_PROTOCOL] = protocol[0]
    if local:
        shared[c.META_LOCAL_TIME] = " ".join(local.split())
    geometry = shared.pop("_geometry", None)
    reads: list[PeRead] = []
    for table in tables:
        metadata = dict(shared)
        spec = filters.get(table.operation)
        if spec:
            metadata[c.META_FILTER] = spec
        rows_, columns = _geometry(geometry, list(table.cells))
        times = tuple(t - table.times[0] for t in table.times) if len(table.times) > 1 else ()
        reads.append(
            PeRead(
                plate=plate,
                label=table.label,
                line=table.line,
                rows=rows_,
                columns=columns,
                cells=table.cells,
                times_s=times,
                plate_id=None if barcode.casefold() in c.NIVO_NO_BARCODE else barcode,
                date_text=local,
                date_line=key_lines.get(c.NIVO_START),
                utc_text=utc,
                metadata=metadata,
            )
        )
    return PeExport(family=c.FAMILY_NIVO, reads=tuple(reads))


def _nivo_table(
    rows: Sequence[Row], start: int, operation: str, label: str
) -> tuple[_NivoTable, int]:
    index = start
    while index < len(rows) and rows[index].first != c.NIVO_WELL:
        index += 1
    if index >= len(rows):
        raise InputFileError(c.NIVO_NO_TABLE, line=rows[start].number)
    header = rows[index]
    # 'Well,Time(s),0.0,1772.1,…': the times start after the per-well time column.
    cells = [cell.strip() for cell in header.cells]
    while cells and not cells[-1]:
        cells.pop()
    first_value = 2 if len(cells) > 1 and cells[1].casefold().startswith("time") else 1
    times: list[float] = []
    for column, text in enumerate(cells[first_value:], start=first_value + 1):
        if not _is_number(text):
            raise InputFileError(
                c.NIVO_BAD_TIME.format(found=text, column=column), line=header.number
            )
        value = float(text.replace(",", "."))
        if times and value < times[-1]:
            raise InputFileError(
                c.NIVO_TIME_ORDER.format(found=text, column=column), line=header.number
            )
        times.append(value)
    if not times:
        raise InputFileError(c.NIVO_NO_TABLE, line=header.number)
    wells: dict[str, tuple[str, ...]] = {}
    index += 1
    while index < len(rows) and not rows[index].is_blank:
        row = rows[index]
        if row.first == c.NIVO_PARAMETERS or _OPERATION.match(row.first):
            break
        well = well_name(row.first, line=row.number, message=c.NIVO_BAD_WELL)
        if well in wells:
            raise InputFileError(c.NIVO_DUPLICATE_WELL.format(well=well), line=row.number)
        values = list(row.cells[first_value : first_value + len(times)])
        if len(values) < len(times):
            msg = c.NIVO_SHORT_ROW.format(well=well, found=len(values), expected=len(times))
            raise InputFileError(msg, line=row.number)
        wells[well] = tuple(values)
        index += 1
    table = _NivoTable(
        operation=operation, label=label, line=header.number, times=times, cells=wells
    )
    return table, index


def _nivo_parameters(rows: Sequence[Row]) -> tuple[dict[str, str], dict[str, str]]:
    found: dict[str, str] = {}
    filters: dict[str, str] = {}
    operation = ""
    for row in rows:
        key, value = row.first, row.cell(1)
        if key == c.NIVO_SOFTWARE and value:
            found.setdefault(Meta.SOFTWARE, value)
        elif key == c.NIVO_SERIAL and value:
            found.setdefault(Meta.READER_SERIAL, value)
        elif key == c.NIVO_PLATE_FORMAT:
            size = _PLATE_SIZE.search(value)
            if size:
                found.setdefault("_geometry", f"{size.group(1)}x{size.group(2)}")
        elif (match := _OPERATION.match(key)) is not None:
            operation = match.group(1)
        elif key in c.NIVO_FILTERS and value and operation:
            filters.setdefault(operation, value)
    return found, filters


def filter_wavelength(spec: str) -> float | None:
    """The centre nm of a Nivo filter ('600/10nm' → 600)."""
    match = _FILTER_NM.match(spec)
    return float(match.group(1)) if match else None
