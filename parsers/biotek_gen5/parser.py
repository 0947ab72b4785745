"""BioTek Gen5 exports (text and xlsx; endpoint and kinetic) → one PlateRead per plate and read."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from saa_lab.domain import KineticSeries, Meta, PlateRead, SourceFile, WellValue
from saa_lab.errors import InputFileError

from ..base import Instrument, PlateParser, decode, parse_cell
from ..common import (
    PLATE_SHAPES,
    geometry_for,
    in_wavelength_range,
    note_wavelength,
    plate_read,
    present,
    wavelength_in,
)
from ..table import decide_decimal_comma, is_workbook, read_workbook, split_text
from . import clock
from . import constants as c
from .reader import has_header, read_plates

if TYPE_CHECKING:
    from ..table import Row
    from .structure import Grid, KineticTable, PlateBlock

__all__ = ["Gen5TextParser", "is_derived_label", "wavelength_from_label"]

_NUMBER = r"(\d+(?:\.\d+)?)\s*(?:nm)?"
# A Gen5 label's wavelength: the whole label, after its last colon, or in closing brackets.
_LABEL_WAVELENGTHS = (
    re.compile(r"^" + _NUMBER + r"\Z", re.IGNORECASE),
    re.compile(r":\s*" + _NUMBER + r"\s*(?:\[[^\]]*\])?\Z", re.IGNORECASE),
    re.compile(r"\[\s*" + _NUMBER + r"\s*\]$", re.IGNORECASE),
)
_PROCEDURE_WAVELENGTHS = re.compile(r"^Wavelengths?:\s*(.+)$", re.IGNORECASE)
_PLATE_WELLS = re.compile(r"(?<!\d)(6|12|24|48|96|384)(?!\d)")
_TEMPERATURE = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")


class Gen5TextParser(PlateParser):
    """Gen5's text (tab-separated) and Excel exports, endpoint and kinetic.

    Each plate starts at a ``Software Version`` header: repeated in a text file, once per
    sheet in a workbook. Endpoint reads come from the ``Results`` grid (one read per
    trailing label; further reads of a row are stacked on lines with an empty row letter)
    or from grids titled by the read's label; kinetic reads from ``Time<TAB>T° 600<TAB>A1…``
    tables titled by the read's label. The ``Layout`` grid is skipped.
    """

    INSTRUMENT = Instrument.BIOTEK_GEN5
    DISPLAY_NAME = c.DISPLAY_NAME
    SUPPORTED_EXTENSIONS = (".txt", ".xlsx")

    @classmethod
    def sniff(cls, head: str) -> bool:
        lines = split_text(head.removeprefix("\ufeff"), "\t")[: c.SNIFF_LINES]
        keys = {line.first for line in lines if len(line.cells) > 1}
        return c.SOFTWARE_VERSION in keys and any(key in keys for key in c.SNIFF_KEYS)

    def read_file(self, source: SourceFile) -> list[PlateRead]:
        return _parse(source)


def _parse(source: SourceFile) -> list[PlateRead]:
    workbook = is_workbook(source.contents)
    encoding: str | None = None
    if workbook:
        blocks = _workbook_blocks(source)
    else:
        text, encoding = decode(source)
        blocks = read_plates(split_text(text.removeprefix("\ufeff"), "\t"))
    decimal_comma = decide_decimal_comma(_data_cells(blocks), "\t")
    reads: list[PlateRead] = []
    for plate_index, block in enumerate(blocks):
        context = _Context(source, encoding, decimal_comma, workbook, plate_index, len(reads))
        try:
            reads.extend(_plate_reads(block, context))
        except InputFileError as err:
            raise _in_sheet(err, block.sheet) from err
    return reads


def _workbook_blocks(source: SourceFile) -> list[PlateBlock]:
    blocks: list[PlateBlock] = []
    for sheet in read_workbook(source):
        if not has_header(sheet.rows):
            continue
        try:
            found = read_plates(sheet.rows)
        except InputFileError as err:
            raise _in_sheet(err, sheet.name) from err
        blocks.extend(replace(block, sheet=sheet.name) for block in found)
    if not blocks:
        raise InputFileError(c.NO_HEADER_IN_WORKBOOK)
    return blocks


def _in_sheet(err: InputFileError, sheet: str | None) -> InputFileError:
    if sheet is None:
        return err
    message = c.IN_SHEET.format(sheet=sheet, message=err.message)
    return InputFileError(message, path=err.path, line=err.line, well=err.well)


def _data_cells(blocks: Iterable[PlateBlock]) -> Iterable[str]:
    for block in blocks:
        for grid in block.grids:
            for row in grid.rows:
                yield from row.values
        for table in block.kinetics:
            for kinetic_row in table.rows:
                yield from kinetic_row.values
                if kinetic_row.temperature is not None:
                    yield kinetic_row.temperature


@dataclass(frozen=True)
class _Context:
    source: SourceFile
    encoding: str | None
    decimal_comma: bool
    workbook: bool
    plate_index: int
    first_index: int


@dataclass
class _ReadBuilder:
    """Wells of one read label gathered over the grids of one plate."""

    label: str | None
    columns: int
    rows: int
    first_line: int
    wells: dict[str, WellValue] = field(default_factory=dict)


@dataclass(frozen=True)
class _Draft:
    """A read before its index in the file is known (kinetic when it has a series)."""

    line: int
    label: str | None
    wells: Mapping[str, WellValue]
    rows: int
    columns: int
    metadata: Mapping[str, str]
    kinetic: KineticSeries | None = None


def _plate_reads(block: PlateBlock, context: _Context) -> list[PlateRead]:
    drafts: list[_Draft] = []
    builders: dict[str | None, _ReadBuilder] = {}
    for grid in block.grids:
        if grid.title and grid.title.casefold() in c.SKIPPED_TITLES:
            continue
        _collect(grid, builders, context.decimal_comma)
    for builder in builders.values():
        metadata: dict[str, str] = {}
        temperature = block.extras.get(c.META_ACTUAL_TEMPERATURE)
        if temperature:
            metadata[Meta.TEMPERATURE] = temperature
        drafts.append(
            _Draft(
                line=builder.first_line,
                label=builder.label,
                wells=builder.wells,
                rows=builder.rows,
                columns=builder.columns,
                metadata=metadata,
            )
        )
    if block.kinetics:
        rows, columns = _kinetic_geometry(block)
        drafts.extend(_kinetic_draft(t, block, context, rows, columns) for t in block.kinetics)
    if not drafts:
        raise InputFileError(c.NO_RESULTS.format(plate=block.name), line=block.start_line)

    common = _block_metadata(block, context)
    read_time = _read_time(block, context, common)
    wavelengths = _procedure_wavelengths(common.get(c.META_WAVELENGTHS, ""))
    plate_id = next(
        (v for k, v in block.header.items() if k.casefold() in c.PLATE_ID_KEYS and v), None
    )
    if plate_id:
        common[Meta.PLATE_ID] = plate_id
    reads: list[PlateRead] = []
    for offset, draft in enumerate(sorted(drafts, key=lambda d: d.line)):
        label = draft.label
        derived = label is not None and is_derived_label(label)
        wavelength = wavelength_from_label(label) if label else None
        if wavelength is None and not derived and len(wavelengths) == 1:
            wavelength = wavelengths[0]
        metadata = {**common, **draft.metadata}
        if label:
            metadata[c.META_LABEL] = label
            metadata[Meta.LABEL] = label
        note_wavelength(metadata, wavelength)
        reads.append(
            plate_read(
                context.source,
                Instrument.BIOTEK_GEN5,
                draft.wells,
                index=context.first_index + offset,
                plate_index=context.plate_index,
                plate_id=plate_id,
                label=label,
                wavelength_nm=wavelength,
                read_time=read_time,
                rows=draft.rows,
                columns=draft.columns,
                derived=derived,
                metadata=metadata,
                kinetic=draft.kinetic,
            )
        )
    return reads


def _block_metadata(block: PlateBlock, context: _Context) -> dict[str, str]:
    """The header and procedure keys as written, plus the standard keys every read shares."""
    metadata = present(block.header)
    metadata.update(_procedure_metadata(block.procedure))
    metadata.update(block.extras)
    if context.encoding is not None:
        metadata[c.META_ENCODING] = context.encoding
    if block.sheet is not None:
        metadata[Meta.SHEET] = block.sheet
    version = block.header.get(c.SOFTWARE_VERSION)
    reader = {
        Meta.READER_MODEL: block.header.get(c.READER_TYPE_KEY),
        Meta.READER_SERIAL: block.header.get(c.READER_SERIAL_KEY),
        Meta.SOFTWARE: c.META_SOFTWARE_PREFIX + version if version else None,
    }
    metadata.update(present(reader))
    return metadata


def _read_time(block: PlateBlock, context: _Context, metadata: dict[str, str]) -> datetime | None:
    """The header's Date and Time as an aware datetime in the lab's zone (Gen5 gives none)."""
    day, assumed = clock.parse_date(block.header.get(c.DATE_KEY, ""))
    moment = clock.parse_time_of_day(block.header.get(c.TIME_KEY, ""))
    if day is None or moment is None:
        return None
    local = datetime.combine(day, moment)
    metadata[Meta.READ_TIME] = local.isoformat()
    if assumed:
        metadata[c.META_DATE_ORDER] = c.DATE_ORDER_ASSUMED
    return local.replace(tzinfo=context.source.timezone)


def _collect(grid: Grid, builders: dict[str | None, _ReadBuilder], decimal_comma: bool) -> None:
    title = grid.title
    if title and title.casefold() == c.RESULTS_TITLE:
        title = None
    for row in grid.rows:
        label = row.label or title
        if label and label.casefold() in c.SKIPPED_LABELS:
            continue
        builder = builders.get(label)
        if builder is None:
            rows = c.ROWS_FOR_COLUMNS[grid.columns]
            builder = _ReadBuilder(label, grid.columns, rows, first_line=row.line)
            builders[label] = builder
        for column, raw in enumerate(row.values, start=1):
            well = f"{row.row}{column}"
            if well in builder.wells:
                msg = c.DUPLICATE_WELL.format(well=well, label=label or c.RESULTS_TITLE)
                raise InputFileError(msg, line=row.line, well=well)
            builder.wells[well] = parse_cell(raw, decimal_comma=decimal_comma)


# --- kinetic reads --------------------------------------------------------------------------


def _kinetic_geometry(block: PlateBlock) -> tuple[int, int]:
    """Rows and columns of the plate: its declared type, else its grids, else its wells."""
    plate_type = _procedure_metadata(block.procedure).get(c.PLATE_TYPE_KEY, "")
    match = _PLATE_WELLS.search(plate_type)
    if match:
        rows, columns = PLATE_SHAPES[int(match.group(1))]
    elif block.grids:
        columns = max(grid.columns for grid in block.grids)
        rows = c.ROWS_FOR_COLUMNS[columns]
    else:
        wells = (well for table in block.kinetics for well in table.wells)
        rows, columns = geometry_for(wells, at_least=6)
    for table in block.kinetics:
        for well in table.wells:
            if c.ROW_LETTERS.index(well[0]) >= rows or int(well[1:]) > columns:
                msg = c.WELL_OUTSIDE_PLATE.format(
                    well=well, wells=rows * columns, rows=rows, columns=columns
                )
                raise InputFileError(msg, line=table.header_line, well=well)
    return rows, columns


def _kinetic_draft(
    table: KineticTable, block: PlateBlock, context: _Context, rows: int, columns: int
) -> _Draft:
    times = _kinetic_times(table, block, context)
    series: dict[str, list[WellValue]] = {well: [] for well in table.wells}
    for row in table.rows:
        for well, raw in zip(table.wells, row.values, strict=True):
            series[well].append(parse_cell(raw, decimal_comma=context.decimal_comma))
    readings = {well: tuple(values) for well, values in series.items()}
    kinetic = KineticSeries(times_s=times, readings=readings)
    first = table.rows[0].time
    metadata = {
        c.META_KINETIC_READS: str(len(table.rows)),
        c.META_KINETIC_FIRST_TIME: first or c.FIRST_TIME_EMPTY,
    }
    if len(times) > 1:
        metadata[c.META_KINETIC_INTERVAL] = f"{times[1] - times[0]:g}"
    if table.temperature_header is not None:
        metadata[c.META_TEMPERATURE_COLUMN] = table.temperature_header
        temperatures = [
            row.temperature for row in table.rows if _TEMPERATURE.match(row.temperature or "")
        ]
        if temperatures:
            metadata[Meta.TEMPERATURE] = temperatures[-1] or ""
            low = min(temperatures, key=_temperature_value)
            high = max(temperatures, key=_temperature_value)
            metadata[c.META_TEMPERATURE_RANGE] = f"{low}–{high}"
    if table.padding_dropped:
        metadata[c.META_DROPPED_PADDING] = str(table.padding_dropped)
    if table.repaired_lines:
        metadata[c.META_REPAIRED_LINES] = ", ".join(str(n) for n in table.repaired_lines)
    offset = _day_offset(table, block, context)
    if offset:
        metadata[c.META_TIME_DAY_OFFSET] = str(offset)
    return _Draft(
        line=table.header_line,
        label=table.title,
        wells={well: values[-1] for well, values in readings.items()},
        rows=rows,
        columns=columns,
        metadata=metadata,
        kinetic=kinetic,
    )


def _temperature_value(text: str | None) -> float:
    return float((text or "0").replace(",", "."))


def _raw_seconds(table: KineticTable) -> list[float | None]:
    """Each row's Time cell in seconds; None only for an empty first cell."""
    seconds: list[float | None] = []
    for position, row in enumerate(table.rows):
        if not row.time:
            if position:
                raise InputFileError(c.KINETIC_EMPTY_TIME, line=row.line)
            seconds.append(None)
            continue
        value = clock.elapsed_seconds(row.time)
        if value is None:
            raise InputFileError(c.KINETIC_BAD_TIME.format(found=row.time), line=row.line)
        seconds.append(value)
    return seconds


def _day_offset(table: KineticTable, block: PlateBlock, context: _Context) -> int:
    """Whole days a workbook writer added to every time cell (0 for text and for Excel).

    The header's Time of day shows it (see :func:`clock.day_offset`). Without that, a
    workbook whose first time cell is empty (a writer that leaves 0:00:00 out) and whose
    second reading comes a day or more later has the offset in that second time.
    """
    if not context.workbook:
        return 0
    offset = clock.day_offset(block.header.get(c.TIME_KEY, ""))
    if offset or len(table.rows) < 2 or table.rows[0].time:
        return offset
    second = clock.elapsed_seconds(table.rows[1].time)
    return int(second // c.SECONDS_PER_DAY) if second is not None else 0


def _kinetic_times(table: KineticTable, block: PlateBlock, context: _Context) -> tuple[float, ...]:
    """Seconds from the first reading, with a workbook writer's day offset taken off."""
    raw = _raw_seconds(table)
    shift = _day_offset(table, block, context) * c.SECONDS_PER_DAY
    elapsed: list[float] = []
    for row, seconds in zip(table.rows, raw, strict=True):
        value = 0.0 if seconds is None else seconds - shift
        if value < 0:
            days = int(shift // c.SECONDS_PER_DAY)
            raise InputFileError(
                c.KINETIC_BEFORE_START.format(found=row.time, days=days), line=row.line
            )
        if elapsed and value < elapsed[-1]:
            msg = c.KINETIC_TIME_GOES_BACK.format(found=row.time, previous=_clock_text(elapsed[-1]))
            raise InputFileError(msg, line=row.line)
        elapsed.append(value)
    start = elapsed[0]
    return tuple(round(value - start, 6) for value in elapsed)


def _clock_text(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


# --- labels and procedure -------------------------------------------------------------------


def _procedure_metadata(procedure: Sequence[Row]) -> dict[str, str]:
    meta: dict[str, str] = {}
    for line in procedure:
        filled = line.filled
        if len(filled) > 1 and filled[0] in c.PROCEDURE_KEYS:
            meta.setdefault(filled[0], filled[1])
        for cell in filled:
            match = _PROCEDURE_WAVELENGTHS.match(cell)
            if match:
                meta.setdefault(c.META_WAVELENGTHS, match.group(1).strip())
    return meta


def _procedure_wavelengths(text: str) -> list[float]:
    values = [part.strip() for part in text.split(",")]
    found = [in_wavelength_range(float(v)) for v in values if re.fullmatch(r"\d+(?:\.\d+)?", v)]
    return [v for v in found if v is not None]


def wavelength_from_label(label: str) -> float | None:
    """The read's wavelength in nm from a Gen5 label, or None.

    ``710``, ``710nm``, ``OD:710``, ``690nm:690``, ``Read 1:710``, ``abs710:710``,
    ``Blank 710`` and ``Max V [710]`` all give 710.
    """
    text = label.strip()
    for prefix in c.DERIVED_PREFIXES:
        if text.casefold().startswith(prefix + " "):
            text = text[len(prefix) + 1 :].strip()
            break
    return wavelength_in(text, _LABEL_WAVELENGTHS)


def is_derived_label(label: str) -> bool:
    """True for Gen5 calculation labels (``Blank 710``, ``[Concentration]``, ``Max V [600]``)."""
    text = label.strip().casefold()
    if text.startswith("["):
        return True
    tail = text.rsplit(":", 1)[-1].strip()
    return any(text.startswith(p) or tail.startswith(p) for p in c.DERIVED_PREFIXES)
